{#-
    Regional benchmarks: region x indicator x year.
      rank_in_level = rank among the EU27 regions (var('eu27_countries')) of the same NUTS level that
                      have a value for the indicator and year, best first: descending when
                      direction = higher, ascending when direction = lower. Regional datasets are
                      fetched for every region (catalogue geo: all_regions), so this is the EU-wide
                      rank; regions outside the EU27 are listed but not ranked.
      location_quotient (sector employment indicators, lq_total_indicator_code set):
          LQ = (E_sector,region / E_total,region) / (E_sector,EU27 / E_total,EU27)
    Incremental per indicator (ranks compare all regions of one indicator, so an indicator is the unit of work):
    each row carries the input_fingerprint of its indicator (macro region_benchmark_inputs: the fingerprints of
    its dataset and of its LQ denominator's dataset as stored in int_indicator_values_resolved, its seed row,
    cluster_regions, eu27_countries). The pre-hook deletes the rows of indicators whose fingerprint changed; a
    build computes only the indicators with no row left, in the same transaction. With var('as_of_date') the
    mart is rebuilt whole as a table. The key (indicator_code, geo_code, year) is a unique index.
-#}
{{
    config(
        materialized='table' if var('as_of_date', none) else 'incremental',
        incremental_strategy='append',
        on_schema_change='append_new_columns',
        pre_hook="{{ delete_stale_rows('indicator_code', region_benchmark_inputs()) }}",
        indexes=[{'columns': ['indicator_code', 'geo_code', 'year'], 'unique': True}],
    )
}}

with

indicators_to_build as (

    -- every Eurostat indicator with its input fingerprint (only the new or changed ones on an incremental build)
    {{ units_to_build('indicator_code', region_benchmark_inputs()) }}

),

-- read by five joins below: inlined into each (with its own filters pushed down) instead of one
-- materialised copy of every indicator value
resolved as not materialized (

    select * from {{ ref('int_indicator_values_resolved') }}

),

indicators as (

    select * from {{ ref('indicators') }}
    where source_type = 'eurostat'

),

nuts_regions as (

    select * from {{ ref('nuts_regions') }}

),

cluster_regions as (

    select
        nuts_code,
        string_agg(cluster_id, ',' order by cluster_id) as cluster_ids

    from {{ ref('cluster_regions') }}
    group by nuts_code

),

regions as (

    select
        resolved.*,
        indicators.direction,
        indicators.aggregation,
        indicators.lq_total_indicator_code,
        resolved.country_code in ({{ sql_text_list(var('eu27_countries')) }}) as is_eu27

    from resolved
    inner join indicators
        on indicators.indicator_code = resolved.indicator_code
    where resolved.geo_type in ('nuts1', 'nuts2', 'nuts3')
        and resolved.indicator_code in (select indicators_to_build.indicator_code from indicators_to_build)

),

ranked as (

    select
        regions.*,
        case when value is not null and is_eu27 then
            rank() over (
                partition by indicator_code, year, nuts_level, (value is not null and is_eu27)
                order by case when direction = 'lower' then value else -value end
            )
        end as rank_in_level,
        count(value) filter (where is_eu27) over (partition by indicator_code, year, nuts_level)
            as n_regions_in_level

    from regions

),

with_comparators as (

    select
        ranked.*,
        national.value as national_value,
        eu27.value as eu27_value,
        region_total.value as region_total_value,
        eu27_total.value as eu27_total_value

    from ranked
    left join resolved as national
        on national.indicator_code = ranked.indicator_code
        and national.year = ranked.year
        and national.geo_code = ranked.country_code
        and national.geo_type = 'country'
    left join resolved as eu27
        on eu27.indicator_code = ranked.indicator_code
        and eu27.year = ranked.year
        and eu27.geo_code = 'EU27_2020'
    left join resolved as region_total
        on region_total.indicator_code = ranked.lq_total_indicator_code
        and region_total.year = ranked.year
        and region_total.geo_code = ranked.geo_code
        and region_total.geo_type in ('nuts1', 'nuts2', 'nuts3')
        -- only the LQ denominators are hashed for this join, not every indicator's regions
        and region_total.indicator_code in (
            select lq_totals.lq_total_indicator_code from {{ ref('indicators') }} as lq_totals
        )
    left join resolved as eu27_total
        on eu27_total.indicator_code = ranked.lq_total_indicator_code
        and eu27_total.year = ranked.year
        and eu27_total.geo_code = 'EU27_2020'

),

final as (

    select
        cast(with_comparators.geo_code as text) as geo_code,
        cast(with_comparators.indicator_code as text) as indicator_code,
        cast(with_comparators.year as integer) as year,
        cast(nuts_regions.nuts_name as text) as geo_name,
        cast(with_comparators.nuts_level as integer) as nuts_level,
        cast(with_comparators.country_code as text) as country_code,
        cast(is_eu27 as boolean) as is_eu27,
        cast(with_comparators.nuts_version as text) as nuts_version,
        {{ clean_numeric('with_comparators.value', 6) }} as value,
        {{ clean_numeric('national_value', 6) }} as national_value,
        {{ clean_numeric('eu27_value', 6) }} as eu27_value,
        {{ clean_numeric(
            "case when aggregation is distinct from 'sum' then 100 * "
            ~ safe_divide('with_comparators.value', 'eu27_value') ~ " end", 2) }} as index_vs_eu,
        cast(rank_in_level as integer) as rank_in_level,
        cast(n_regions_in_level as integer) as n_regions_in_level,
        {{ clean_numeric(safe_divide('with_comparators.value', 'region_total_value'), 6) }} as sector_share,
        {{ clean_numeric(safe_divide('eu27_value', 'eu27_total_value'), 6) }} as eu27_sector_share,
        {{ clean_numeric(
            safe_divide(safe_divide('with_comparators.value', 'region_total_value'),
                        safe_divide('eu27_value', 'eu27_total_value')), 4) }} as location_quotient,
        cast(cluster_regions.nuts_code is not null as boolean) as is_cluster_region,
        cast(cluster_regions.cluster_ids as text) as cluster_ids,
        cast(is_provisional as boolean) as is_provisional,
        cast(is_estimated as boolean) as is_estimated,
        cast(is_confidential as boolean) as is_confidential,
        cast(is_break as boolean) as is_break,
        cast(batch_ids as text) as batch_ids,
        cast(indicators_to_build.input_fingerprint as text) as input_fingerprint

    from with_comparators
    inner join indicators_to_build
        on indicators_to_build.indicator_code = with_comparators.indicator_code
    left join nuts_regions
        on nuts_regions.nuts_code = with_comparators.geo_code
    left join cluster_regions
        on cluster_regions.nuts_code = with_comparators.geo_code

)

select * from final
