with

source as (

    select * from {{ source('surveys', 'survey_soa_profile') }}

),

versioned as (

    {{ latest_survey_file('source') }}

),

renamed as (

    select
        cluster as cluster_id,
        wave as year,
        file_sha256,
        batch_id,

        members_sme,
        members_large_company,
        members_research,
        members_public,
        members_other,
        members_sme + members_large_company + members_research + members_public + members_other
            as members_total,
        member_employees,
        member_turnover_eur,
        innovation_turnover_eur,
        staff_fte,
        nullif(trim(labels), '') as labels,
        case
            when nullif(trim(labels), '') is null then 0
            else cardinality(array_remove(regexp_split_to_array(trim(labels), '\s*[;,|]\s*'), ''))
        end as labels_count,

        formula_like as has_formula_like_text,
        is_latest_file

    from versioned

)

select * from renamed
