{#-
    Eurostat indicator values per indicator x geo x year (annual data only).

    1. Each Eurostat indicator of the `indicators` seed selects its series by dataset and a
       dims filter ("k=v;k=v", matched by jsonb containment on `dims`); `computation = share`
       divides the sum of the numerator series by the denominator series (x100).
    2. NUTS-version resolution: Eurostat mixes codes of several NUTS versions in one geo
       dimension. Per indicator and country we keep sub-national codes of ONE version only:
       the version whose version-exclusive codes carry the most recent data (NUTS 2024 on a
       tie); codes valid in both versions are kept either way. Codes unknown to the
       `nuts_regions` seed are kept with nuts_version 'unknown'.
    3. Share quality: a share is computed only from one slice of the dataset (all dims except the
       numerator/denominator dimension equal), with every numerator component and the
       denominator reported, and 0 <= numerator <= denominator. Otherwise value is null and
       quality_flag is share_mixed_slices | share_numerator_incomplete | share_denominator_missing
       | share_negative_component | share_denominator_zero | share_above_100 (components that add
       up to more than the published total: inconsistent source data, never a share > 100 %)
       | share_complement_missing (a complement_filter class, e.g. GE250, is configured but not reported:
       the classes cannot be checked against the total) | share_components_inconsistent (numerator +
       complement classes differ from the total by more than var('share_partition_tolerance'), default 1 %).
    4. Incremental per dataset (an indicator reads one dataset, and NUTS versions are resolved per indicator):
       each row carries the input_fingerprint of its dataset (macro eurostat_indicator_inputs: its batches, its
       indicators' definitions, the nuts_regions seed, as_of_date). The pre-hook deletes the rows of datasets
       whose fingerprint changed; a build computes only the datasets with no row left, so a night's cost follows
       the datasets that changed, not the history. A dataset that yields no row is recomputed every build (correct,
       only not skipped). With var('as_of_date') the model is rebuilt whole as a table.
       The key (indicator_code, geo_code, year) is a unique index: a dims filter selecting two series for one geo
       and year fails the build with the duplicated key, instead of a data test re-reading every row nightly.
-#}
{{
    config(
        materialized='table' if var('as_of_date', none) else 'incremental',
        incremental_strategy='append',
        on_schema_change='sync_all_columns',
        pre_hook="{{ delete_stale_rows('dataset', eurostat_indicator_inputs()) }}",
        indexes=[
            {'columns': ['dataset', 'input_fingerprint']},
            {'columns': ['indicator_code', 'geo_code', 'year'], 'unique': True},
        ],
    )
}}

with

datasets_to_build as (

    -- every dataset read by a Eurostat indicator, with its input fingerprint (only the new or changed ones on an
    -- incremental build)
    {{ units_to_build('dataset', eurostat_indicator_inputs()) }}

),

indicators as (

    select
        indicator_code,
        source_dataset,
        computation,
        (
            select coalesce(jsonb_object_agg(split_part(kv, '=', 1), split_part(kv, '=', 2)), cast('{}' as jsonb))
            from unnest(string_to_array(dims_filter, ';')) as kv
            where kv <> ''
        ) as dims_filter_json,
        split_part(numerator_filter, '=', 1) as numerator_dim,
        string_to_array(split_part(numerator_filter, '=', 2), '|') as numerator_values,
        split_part(denominator_filter, '=', 1) as denominator_dim,
        string_to_array(split_part(denominator_filter, '=', 2), '|') as denominator_values,
        nullif(split_part(coalesce(complement_filter, ''), '=', 1), '') as complement_dim,
        string_to_array(nullif(split_part(coalesce(complement_filter, ''), '=', 2), ''), '|') as complement_values

    from {{ ref('indicators') }}
    where source_type = 'eurostat'
        and source_dataset in (select datasets_to_build.dataset from datasets_to_build)

),

observations as (

    -- latest values, or "as published on date D" when var('as_of_date') is set
    -- depends_on: {{ ref('stg_eurostat__observations') }} {{ ref('int_eurostat_observations_as_published') }}
    {%- if var('as_of_date', none) %}
    select * from {{ ref('int_eurostat_observations_as_published') }}
    {%- else %}
    select * from {{ ref('stg_eurostat__observations') }}
    {%- endif %}
    where period_type = 'annual'
        and dataset in (select datasets_to_build.dataset from datasets_to_build)

),

series as (

    -- one row per series (series_key = its non-geo dims): the dims filter is matched once per
    -- series, not once per observation (jsonb containment per row dominated the build at volume)
    select distinct
        dataset,
        series_key,
        dims

    from observations

),

matched_series as (

    select
        indicators.indicator_code,
        indicators.computation,
        indicators.numerator_dim,
        indicators.numerator_values,
        indicators.denominator_dim,
        indicators.denominator_values,
        indicators.complement_dim,
        indicators.complement_values,
        series.dataset,
        series.series_key

    from indicators
    inner join series
        on series.dataset = indicators.source_dataset
        and series.dims @> indicators.dims_filter_json

),

matched as (

    select
        matched_series.indicator_code,
        matched_series.computation,
        matched_series.numerator_dim,
        matched_series.numerator_values,
        matched_series.denominator_dim,
        matched_series.denominator_values,
        matched_series.complement_dim,
        matched_series.complement_values,
        observations.*

    from matched_series
    inner join observations
        on observations.dataset = matched_series.dataset
        and observations.series_key = matched_series.series_key

),

plain_values as (

    select
        indicator_code,
        dataset,
        series_key as series_keys,
        geo_code,
        year,
        value,
        is_provisional,
        is_estimated,
        is_confidential,
        is_break,
        batch_id as batch_ids,
        source_updated_at,
        cast(null as text) as quality_flag

    from matched
    where computation = 'value'

),

share_components as (

    -- one row per contributing cell; slice_dims = the series dims without the numerator /
    -- denominator dimension, i.e. the slice (unit, nace, indic, ...) a component belongs to
    select
        indicator_code,
        dataset,
        series_key,
        geo_code,
        year,
        value,
        is_provisional,
        is_estimated,
        is_confidential,
        is_break,
        batch_id,
        source_updated_at,
        dims - numerator_dim - denominator_dim - coalesce(complement_dim, '') as slice_dims,
        case when dims ->> numerator_dim = any(numerator_values) then dims ->> numerator_dim end
            as numerator_member,
        case when dims ->> denominator_dim = any(denominator_values) then dims ->> denominator_dim end
            as denominator_member,
        case when dims ->> complement_dim = any(complement_values) then dims ->> complement_dim end
            as complement_member,
        cardinality(numerator_values) as n_numerator_expected,
        cardinality(denominator_values) as n_denominator_expected,
        coalesce(cardinality(complement_values), 0) as n_complement_expected

    from matched
    where computation = 'share'
        and (
            dims ->> numerator_dim = any(numerator_values)
            or dims ->> denominator_dim = any(denominator_values)
            or dims ->> complement_dim = any(complement_values)
        )

),

share_totals as (

    select
        indicator_code,
        dataset,
        string_agg(distinct series_key, ' | ' order by series_key) as series_keys,
        geo_code,
        year,
        count(distinct slice_dims) as n_slices,
        count(*) filter (where numerator_member is not null) as n_numerator_cells,
        count(distinct numerator_member) filter (where value is not null) as n_numerator_values,
        max(n_numerator_expected) as n_numerator_expected,
        count(*) filter (where denominator_member is not null) as n_denominator_cells,
        count(distinct denominator_member) filter (where value is not null) as n_denominator_values,
        max(n_denominator_expected) as n_denominator_expected,
        sum(value) filter (where numerator_member is not null) as numerator,
        sum(value) filter (where denominator_member is not null) as denominator,
        count(*) filter (where complement_member is not null) as n_complement_cells,
        count(distinct complement_member) filter (where value is not null) as n_complement_values,
        max(n_complement_expected) as n_complement_expected,
        sum(value) filter (where complement_member is not null) as complement,
        bool_or(value < 0) as has_negative_component,
        bool_or(is_provisional) as is_provisional,
        bool_or(is_estimated) as is_estimated,
        bool_or(is_confidential) as is_confidential,
        bool_or(is_break) as is_break,
        string_agg(distinct batch_id, ',' order by batch_id) as batch_ids,
        max(source_updated_at) as source_updated_at

    from share_components
    group by indicator_code, dataset, geo_code, year

),

share_values as (

    -- A share is only computed from ONE complete slice: every numerator component and the
    -- denominator reported (a missing / confidential component is never treated as 0),
    -- 0 <= numerator <= denominator, and - when a complement is configured - the complement reported
    -- and numerator + complement = denominator within var('share_partition_tolerance').
    -- Otherwise the value is null and quality_flag says why.
    select
        indicator_code,
        dataset,
        series_keys,
        geo_code,
        year,
        case
            when quality_flag is null then {{ clean_numeric('100.0 * numerator / denominator') }}
        end as value,
        is_provisional,
        is_estimated,
        is_confidential,
        is_break,
        batch_ids,
        source_updated_at,
        quality_flag

    from (

        select
            share_totals.*,
            case
                when n_slices > 1 then 'share_mixed_slices'
                when n_numerator_values < n_numerator_expected
                    or n_numerator_cells <> n_numerator_expected then 'share_numerator_incomplete'
                when n_denominator_values < n_denominator_expected
                    or n_denominator_cells <> n_denominator_expected then 'share_denominator_missing'
                when has_negative_component then 'share_negative_component'
                when denominator = 0 then 'share_denominator_zero'
                when numerator > denominator then 'share_above_100'
                -- numerator + complement (e.g. GE250) is the full partition of the denominator: it must
                -- be reported and add up to the total (one rule: the seed formulas and README quote it)
                when n_complement_expected > 0
                    and (n_complement_values < n_complement_expected
                        or n_complement_cells <> n_complement_expected)
                    then 'share_complement_missing'
                when n_complement_expected > 0
                    and abs(numerator + complement - denominator)
                        > {{ var('share_partition_tolerance', 0.01) }} * denominator
                    then 'share_components_inconsistent'
            end as quality_flag

        from share_totals

    ) as checked

),

indicator_values as (

    select * from plain_values
    union all
    select * from share_values

),

geo_classified as (

    select
        indicator_values.*,
        coalesce(
            nuts_regions.geo_type,
            case
                when indicator_values.geo_code like '%\_%' or indicator_values.geo_code ~ '^(EU|EA|EFTA)'
                    then 'aggregate'
                when indicator_values.geo_code ~ 'ZZZ?$' then 'extra_regio'
                when length(indicator_values.geo_code) = 2 then 'country'
                when length(indicator_values.geo_code) = 3 then 'nuts1'
                when length(indicator_values.geo_code) = 4 then 'nuts2'
                when length(indicator_values.geo_code) = 5 then 'nuts3'
                else 'aggregate'
            end
        ) as geo_type,
        nuts_regions.nuts_code is not null as is_known_geo,
        nuts_regions.in_nuts_2021,
        nuts_regions.in_nuts_2024

    from indicator_values
    left join {{ ref('nuts_regions') }} as nuts_regions
        on nuts_regions.nuts_code = indicator_values.geo_code

),

with_levels as (

    select
        *,
        case geo_type
            when 'country' then 0
            when 'nuts1' then 1
            when 'nuts2' then 2
            when 'extra_regio' then length(geo_code) - 2
            when 'nuts3' then 3
        end as nuts_level,
        case when geo_type <> 'aggregate' then left(geo_code, 2) end as country_code,
        geo_type in ('nuts1', 'nuts2', 'nuts3', 'extra_regio') as is_subnational

    from geo_classified

),

version_choice as (

    select
        indicator_code,
        country_code,
        max(year) filter (where in_nuts_2021 and not in_nuts_2024) as latest_year_2021_only,
        max(year) filter (where in_nuts_2024 and not in_nuts_2021) as latest_year_2024_only

    from with_levels
    where is_subnational
    group by indicator_code, country_code

),

resolved as (

    select
        with_levels.*,
        case
            when version_choice.latest_year_2024_only is not null
                and version_choice.latest_year_2024_only >= coalesce(version_choice.latest_year_2021_only, 0)
                then '2024'
            when version_choice.latest_year_2021_only is not null then '2021'
        end as chosen_version

    from with_levels
    left join version_choice
        on version_choice.indicator_code = with_levels.indicator_code
        and version_choice.country_code = with_levels.country_code

),

final as (

    select
        indicator_code,
        geo_code,
        year,
        geo_type,
        nuts_level,
        country_code,
        case
            when not is_subnational then 'n/a'
            when not is_known_geo then 'unknown'
            when chosen_version is not null then chosen_version
            when in_nuts_2021 and in_nuts_2024 then 'both'
            when in_nuts_2021 then '2021'
            when in_nuts_2024 then '2024'
            else 'unknown'
        end as nuts_version,
        value,
        is_provisional,
        is_estimated,
        is_confidential,
        is_break,
        resolved.dataset,
        series_keys,
        batch_ids,
        source_updated_at,
        quality_flag,
        datasets_to_build.input_fingerprint

    from resolved
    inner join datasets_to_build
        on datasets_to_build.dataset = resolved.dataset
    where not is_subnational
        or not is_known_geo
        or chosen_version is null
        or (chosen_version = '2024' and in_nuts_2024)
        or (chosen_version = '2021' and in_nuts_2021)

)

select * from final
