with

source as (

    select * from {{ source('surveys', 'survey_sme_interests') }}

),

versioned as (

    {{ latest_survey_file('source') }}

),

renamed as (

    select
        cluster as cluster_id,
        wave,
        respondent_pid,
        sector as cross_sector,
        file_sha256,
        batch_id,
        is_latest_file

    from versioned

)

select * from renamed
