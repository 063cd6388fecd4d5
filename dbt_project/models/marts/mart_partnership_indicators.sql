{#-
    Partnership indicator scoreboard: cluster x indicator x year.
      index_vs_eu   = 100 * value / EU27 value                          (EU = 100)
      progress      = (value - baseline) / (target - baseline)
      elapsed_share = (year - baseline_year) / (target_year - baseline_year), clamped to [0, 1]
      is_on_track   = progress >= elapsed_share
      cagr          = (value / value_{year - n}) ^ (1 / n) - 1,  n = var('cagr_years', 5)
      baseline_check = baseline_year_without_data  (the cluster has no value of the indicator in its baseline year)
                     | baseline_differs_from_observed (|baseline - value of the baseline year| > var('baseline_tolerance',
                       0.05) x |value of the baseline year|): progress against such a baseline says little
-#}
{%- set cagr_years = var('cagr_years', 5) | int -%}

with

indicator_values as (

    select * from {{ ref('int_cluster_indicator_values') }}

),

indicators as (

    select * from {{ ref('indicators') }}

),

clusters as (

    select * from {{ ref('clusters') }}

),

strategy_targets as (

    select * from {{ ref('strategy_targets') }}

),

joined as (

    select
        indicator_values.*,
        indicators.indicator_name,
        indicators.theme,
        indicators.unit,
        indicators.direction,
        indicators.source_type,
        indicators.aggregation,
        strategy_targets.baseline_year,
        strategy_targets.baseline_value,
        strategy_targets.target_year,
        strategy_targets.target_value,
        earlier.value as value_cagr_start,
        at_baseline.value as value_at_baseline_year

    from indicator_values
    inner join clusters
        on clusters.cluster_id = indicator_values.cluster_id
    inner join indicators
        on indicators.indicator_code = indicator_values.indicator_code
    left join strategy_targets
        on strategy_targets.cluster_id = indicator_values.cluster_id
        and strategy_targets.indicator_code = indicator_values.indicator_code
    left join indicator_values as earlier
        on earlier.cluster_id = indicator_values.cluster_id
        and earlier.indicator_code = indicator_values.indicator_code
        and earlier.year = indicator_values.year - {{ cagr_years }}
    left join indicator_values as at_baseline
        on at_baseline.cluster_id = indicator_values.cluster_id
        and at_baseline.indicator_code = indicator_values.indicator_code
        and at_baseline.year = strategy_targets.baseline_year

),

computed as (

    select
        *,
        -- the index compares intensive values (ratios, per head, %); an additive total is not indexed
        case
            when (aggregation is distinct from 'sum')  -- parenthesised for sqlfluff's parser
                then 100 * {{ safe_divide('value', 'eu27_value') }}
        end as index_vs_eu_raw,
        {{ safe_divide('value - baseline_value', 'target_value - baseline_value') }} as progress_raw,
        case
            when baseline_year is not null and target_year is not null
                then least(1, greatest(0, {{ safe_divide('year - baseline_year', 'target_year - baseline_year') }}))
        end as elapsed_share_raw,
        case
            when value > 0 and value_cagr_start > 0
                then power({{ safe_divide('value', 'value_cagr_start') }}, 1.0 / {{ cagr_years }}) - 1
        end as cagr_raw,
        case
            when baseline_year is null or baseline_value is null then null
            when value_at_baseline_year is null then 'baseline_year_without_data'
            when abs(baseline_value - value_at_baseline_year)
                > {{ var('baseline_tolerance', 0.05) }} * abs(value_at_baseline_year)
                then 'baseline_differs_from_observed'
        end as baseline_check

    from joined

),

final as (

    select
        cast(cluster_id as text) as cluster_id,
        cast(indicator_code as text) as indicator_code,
        cast(year as integer) as year,
        cast(indicator_name as text) as indicator_name,
        cast(theme as text) as theme,
        cast(unit as text) as unit,
        cast(direction as text) as direction,
        cast(source_type as text) as source_type,
        cast(geo_scope as text) as geo_scope,
        cast(geo_codes as text) as geo_codes,
        {{ clean_numeric('value', 6) }} as value,
        {{ clean_numeric('national_value', 6) }} as national_value,
        {{ clean_numeric('eu27_value', 6) }} as eu27_value,
        {{ clean_numeric('index_vs_eu_raw', 2) }} as index_vs_eu,
        cast(baseline_year as integer) as baseline_year,
        {{ clean_numeric('baseline_value', 6) }} as baseline_value,
        cast(baseline_check as text) as baseline_check,
        cast(target_year as integer) as target_year,
        {{ clean_numeric('target_value', 6) }} as target_value,
        {{ clean_numeric('progress_raw', 6) }} as progress,
        {{ clean_numeric('elapsed_share_raw', 6) }} as elapsed_share,
        cast(progress_raw >= elapsed_share_raw as boolean) as is_on_track,
        {{ clean_numeric('value_cagr_start', 6) }} as value_cagr_start,
        {{ clean_numeric('cagr_raw', 6) }} as cagr,
        cast(coalesce(is_provisional, false) as boolean) as is_provisional,
        cast(coalesce(is_estimated, false) as boolean) as is_estimated,
        cast(coalesce(is_confidential, false) as boolean) as is_confidential,
        cast(coalesce(is_break, false) as boolean) as is_break,
        cast(nuts_versions as text) as nuts_versions,
        cast(batch_ids as text) as batch_ids,
        cast({{ sql_literal(var('as_of_date', none)) }} as date) as as_of_date,
        cast(quality_flag as text) as quality_flag

    from computed

)

select * from final
