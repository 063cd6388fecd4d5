with

source as (

    select * from {{ source('surveys', 'survey_soa_goals') }}

),

versioned as (

    {{ latest_survey_file('source') }}

),

renamed as (

    select
        cluster as cluster_id,
        wave as year,
        source_row,
        goal as goal_text,
        lower(trim(theme)) as theme,
        baseline_year,
        baseline_value,
        target_year,
        target_value,
        unit,
        file_sha256,
        batch_id,
        formula_like as has_formula_like_text,
        is_latest_file

    from versioned

)

select * from renamed
