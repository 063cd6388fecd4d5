with

source as (

    select * from {{ source('surveys', 'survey_soa_swot') }}

),

versioned as (

    {{ latest_survey_file('source') }}

),

renamed as (

    select
        cluster as cluster_id,
        wave as year,
        source_row,
        kind as swot_kind,
        lower(trim(theme)) as theme,
        text as swot_text,
        file_sha256,
        batch_id,
        formula_like as has_formula_like_text,
        is_latest_file

    from versioned

)

select * from renamed
