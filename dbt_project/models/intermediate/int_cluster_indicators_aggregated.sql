{#-
    Eurostat indicator values per cluster x indicator x year.

    Reference geography of a cluster for an indicator:
      - clusters with benchmark_level = 'eu' (EPSI): EU27_2020;
      - geo_scope = 'regions': every region of the cluster (cluster_regions);
      - geo_scope = 'countries' (national-only data): the cluster's country.
    Several regions are combined as the indicator says:
      - sum            additive quantities (population, GDP, employment, enterprises);
      - weighted_mean  ratios / per-head / percentages: sum(v_r * w_r) / sum(w_r), where w_r is
                       the value of weight_indicator_code (POP = demo_r_d2jan, GDP_MEUR = GDP) for
                       the same region, all regions from ONE weight year: the same year when every
                       region has a weight then, else the nearest year in which all have one (the
                       later on a tie) - weights of different years are never mixed.
                       weight_basis = 'equal' in cluster_regions gives w_r = 1.
    A cluster-year is emitted only when every region of the cluster reports a value (and a weight),
    or when every region reports a row and at least one carries a quality_flag (e.g. a share whose
    components are incomplete or exceed the total): then value is null and quality_flag says why
    (a flagged region never silently drops out of a sum or weighted mean).
    quality_flag lists "<column>:<issue>" for value and for the national / EU27 comparators.

    Planner hint (transaction-local): the row counts of the geo_values CTE are underestimated by orders of
    magnitude, which made Postgres self-join it in a nested loop (minutes at 100x volume instead of ~2 s).
    The cost penalty of the unavoidable cross joins under that setting would also switch on JIT compilation on
    servers built with it (seconds of compiling for a few seconds of work), so JIT is off for it too.
-#}
{{ config(pre_hook=["set local enable_nestloop = off", "set local jit = off"]) }}

with

clusters as (

    select * from {{ ref('clusters') }}

),

cluster_regions as (

    select * from {{ ref('cluster_regions') }}

),

indicators as (

    select * from {{ ref('indicators') }}
    where source_type = 'eurostat'

),

resolved as not materialized (

    -- not materialized: each join below reads the table itself (a few million rows at volume would
    -- otherwise be copied into a CTE buffer and spill to disk)
    select * from {{ ref('int_indicator_values_resolved') }}

),

cluster_geos as (

    -- EU-level clusters
    select
        clusters.cluster_id,
        indicators.indicator_code,
        'EU27_2020' as geo_code,
        'eu' as geo_scope,
        'none' as aggregation,
        cast(null as text) as weight_indicator_code,
        'indicator' as weight_basis

    from clusters
    cross join indicators
    where clusters.benchmark_level = 'eu'

    union all

    -- regional data: all regions of the cluster
    select
        clusters.cluster_id,
        indicators.indicator_code,
        cluster_regions.nuts_code as geo_code,
        'regions' as geo_scope,
        indicators.aggregation,
        indicators.weight_indicator_code,
        cluster_regions.weight_basis

    from clusters
    inner join cluster_regions
        on cluster_regions.cluster_id = clusters.cluster_id
    cross join indicators
    where clusters.benchmark_level = 'region'
        and indicators.geo_scope = 'regions'

    union all

    -- national-only data: the cluster's country
    select
        clusters.cluster_id,
        indicators.indicator_code,
        clusters.country_code as geo_code,
        'country' as geo_scope,
        'none' as aggregation,
        cast(null as text) as weight_indicator_code,
        'indicator' as weight_basis

    from clusters
    cross join indicators
    where clusters.benchmark_level = 'region'
        and indicators.geo_scope = 'countries'

),

expected_geos as (

    select cluster_id, indicator_code, count(*) as n_geos_expected
    from cluster_geos
    group by cluster_id, indicator_code

),

geo_values as (

    select
        cluster_geos.*,
        resolved.year,
        resolved.value,
        resolved.is_provisional,
        resolved.is_estimated,
        resolved.is_confidential,
        resolved.is_break,
        resolved.batch_ids,
        resolved.nuts_version,
        resolved.quality_flag

    from cluster_geos
    inner join resolved
        on resolved.indicator_code = cluster_geos.indicator_code
        and resolved.geo_code = cluster_geos.geo_code

),

weight_year_candidates as (

    -- years in which EVERY region of the cluster-year that needs a weight has one
    select
        geo_values.cluster_id,
        geo_values.indicator_code,
        geo_values.year,
        weights.year as weight_year,
        count(distinct geo_values.geo_code) as n_geos_weighted,
        max(needs.n_geos_needing_weight) as n_geos_needing_weight

    from geo_values
    inner join (
        select
            needing_weight.cluster_id,
            needing_weight.indicator_code,
            needing_weight.year,
            count(*) as n_geos_needing_weight
        from geo_values as needing_weight
        where needing_weight.aggregation = 'weighted_mean' and needing_weight.weight_basis <> 'equal'
        group by needing_weight.cluster_id, needing_weight.indicator_code, needing_weight.year
    ) as needs
        on needs.cluster_id = geo_values.cluster_id
        and needs.indicator_code = geo_values.indicator_code
        and needs.year = geo_values.year
    inner join resolved as weights
        on weights.indicator_code = geo_values.weight_indicator_code
        and weights.geo_code = geo_values.geo_code
        and weights.value is not null
    where geo_values.aggregation = 'weighted_mean'
        and geo_values.weight_basis <> 'equal'
    group by geo_values.cluster_id, geo_values.indicator_code, geo_values.year, weights.year

),

weight_year_choice as (

    -- one weight year per cluster-year (same year preferred, else the nearest, the later on a tie),
    -- so that a weighted mean never mixes weights of different years across regions
    select distinct on (cluster_id, indicator_code, year)
        cluster_id,
        indicator_code,
        year,
        weight_year

    from weight_year_candidates
    where n_geos_weighted = n_geos_needing_weight
    order by cluster_id asc, indicator_code asc, year asc, abs(weight_year - year) asc, weight_year desc

),

weighted as (

    select
        geo_values.*,
        case
            when geo_values.aggregation <> 'weighted_mean' then 1
            when geo_values.weight_basis = 'equal' then 1
            else weights.value
        end as weight_value,
        weights.year as weight_year

    from geo_values
    left join weight_year_choice
        on weight_year_choice.cluster_id = geo_values.cluster_id
        and weight_year_choice.indicator_code = geo_values.indicator_code
        and weight_year_choice.year = geo_values.year
    left join resolved as weights
        on geo_values.aggregation = 'weighted_mean'
        and geo_values.weight_basis <> 'equal'
        and weights.indicator_code = geo_values.weight_indicator_code
        and weights.geo_code = geo_values.geo_code
        and weights.year = weight_year_choice.weight_year
        and weights.value is not null

),

aggregated as (

    select
        cluster_id,
        indicator_code,
        year,
        max(geo_scope) as geo_scope,
        max(aggregation) as aggregation,
        string_agg(geo_code, ',' order by geo_code) as geo_codes,
        count(*) as n_geos_reported,
        count(value) as n_values,
        count(weight_value) as n_weights,
        case max(aggregation)
            when 'sum' then sum(value)
            when 'weighted_mean' then sum(value * weight_value) / nullif(sum(weight_value), 0)
            else max(value)
        end as value,
        bool_or(is_provisional) as is_provisional,
        bool_or(is_estimated) as is_estimated,
        bool_or(is_confidential) as is_confidential,
        bool_or(is_break) as is_break,
        string_agg(distinct nuts_version, ',') as nuts_versions,
        string_agg(distinct batch_ids, ',') as batch_ids,
        string_agg(distinct quality_flag, ',' order by quality_flag) as quality_flags

    from weighted
    group by cluster_id, indicator_code, year

),

final as (

    select
        aggregated.cluster_id,
        aggregated.indicator_code,
        aggregated.year,
        aggregated.geo_scope,
        aggregated.aggregation,
        aggregated.geo_codes,
        aggregated.n_values as n_geos,
        case
            when aggregated.n_values = expected_geos.n_geos_expected
                and aggregated.n_weights = expected_geos.n_geos_expected
                and aggregated.quality_flags is null
                then {{ clean_numeric('aggregated.value') }}
        end as value,
        aggregated.is_provisional,
        aggregated.is_estimated,
        aggregated.is_confidential,
        aggregated.is_break,
        aggregated.nuts_versions,
        aggregated.batch_ids,
        {{ clean_numeric('national.value') }} as national_value,
        {{ clean_numeric('eu27.value') }} as eu27_value,
        nullif(concat_ws(',',
            'value:' || replace(aggregated.quality_flags, ',', ',value:'),
            case when aggregated.geo_scope <> 'country' then 'national_value:' || national.quality_flag end,
            case when aggregated.geo_scope <> 'eu' then 'eu27_value:' || eu27.quality_flag end
        ), '') as quality_flag

    from aggregated
    inner join expected_geos
        on expected_geos.cluster_id = aggregated.cluster_id
        and expected_geos.indicator_code = aggregated.indicator_code
    inner join clusters
        on clusters.cluster_id = aggregated.cluster_id
    left join resolved as national
        on national.indicator_code = aggregated.indicator_code
        and national.year = aggregated.year
        and national.geo_code = clusters.country_code
        and clusters.benchmark_level = 'region'
    left join resolved as eu27
        on eu27.indicator_code = aggregated.indicator_code
        and eu27.year = aggregated.year
        and eu27.geo_code = 'EU27_2020'
    where aggregated.n_geos_reported = expected_geos.n_geos_expected
        and (
            (
                aggregated.n_values = expected_geos.n_geos_expected
                and aggregated.n_weights = expected_geos.n_geos_expected
                and aggregated.value is not null
            )
            or aggregated.quality_flags is not null
        )

)

select * from final
