with

source as (

    select * from {{ source('surveys', 'survey_sme_respondents') }}

),

versioned as (

    {{ latest_survey_file('source') }}

),

renamed as (

    select
        -- ids
        cluster as cluster_id,
        wave,
        respondent_pid,
        file_sha256,
        batch_id,

        -- profile
        nuts3 as nuts3_code,
        nace as nace_code,
        left(regexp_replace(nace, '[^0-9]', '', 'g'), 2) as nace_division,
        size_class,
        size_class in ('micro', 'small', 'medium') as is_sme,
        turnover_band,
        export_share,
        does_rd,
        founding_year,

        -- outcomes
        digital_maturity,
        low_carbon_offer as offers_low_carbon,
        low_carbon_which,

        -- quality
        formula_like as has_formula_like_text,
        is_latest_file

    from versioned

)

select * from renamed
