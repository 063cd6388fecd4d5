{#- All indicator values per cluster x indicator x year: Eurostat context (layer A) and,
    from the surveys, cluster KPIs (layer B) and member outcomes (layer C). -#}
with

eurostat as (

    select
        cluster_id,
        indicator_code,
        year,
        geo_scope,
        geo_codes,
        value,
        national_value,
        eu27_value,
        is_provisional,
        is_estimated,
        is_confidential,
        is_break,
        nuts_versions,
        batch_ids,
        quality_flag

    from {{ ref('int_cluster_indicators_aggregated') }}

),

surveys as (

    select
        cluster_id,
        indicator_code,
        year,
        geo_scope,
        geo_codes,
        value,
        national_value,
        eu27_value,
        is_provisional,
        is_estimated,
        is_confidential,
        is_break,
        nuts_versions,
        batch_ids,
        cast(null as text) as quality_flag

    from {{ ref('int_cluster_survey_indicators') }}

),

unioned as (

    select * from eurostat
    union all
    select * from surveys

)

select * from unioned
