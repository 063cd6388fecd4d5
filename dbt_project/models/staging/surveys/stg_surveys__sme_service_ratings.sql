with

source as (

    select * from {{ source('surveys', 'survey_sme_service_ratings') }}

),

versioned as (

    {{ latest_survey_file('source') }}

),

renamed as (

    select
        cluster as cluster_id,
        wave,
        respondent_pid,
        service as service_code,
        file_sha256,
        batch_id,

        used_12m as used_last_12_months,
        importance,
        satisfaction,
        impact,
        coalesce(priority_top3, false) as is_priority_top3,
        -- gap score of one answer: importance - satisfaction (null unless both were answered)
        importance - satisfaction as gap,

        is_latest_file

    from versioned

)

select * from renamed
