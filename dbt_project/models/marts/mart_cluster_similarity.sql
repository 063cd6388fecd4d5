{#-
    Similarity between clusters, one row per unordered cluster pair (cluster_a < cluster_b).
      indicator_similarity  cosine similarity of the clusters' indicator profiles (intensive
                            indicators: ratios, per-head values, shares, scores): for each
                            indicator the cluster's latest value is z-scored across clusters,
                            z = (v - mean) / stddev_pop; cosine = sum(za*zb) / (|za| * |zb|) over
                            the indicators both clusters have (indicators with stddev 0 drop out).
      needs_similarity      cosine similarity of the SME-needs gap vectors (gap per service,
                            latest wave of each cluster), over the services both have.
      shared_needs          services with a positive gap in both clusters, largest gap_a + gap_b
                            first (top var('top_shared_needs')) -> joint-service candidates.
      swot synergies        themes where one cluster's strength meets the other's weakness.
-#}
{%- set top_n = var('top_shared_needs', 3) | int -%}

with

clusters as (

    select * from {{ ref('clusters') }}

),

indicators as (

    select * from {{ ref('indicators') }}

),

indicator_values as (

    -- additive totals (aggregation = sum: population, GDP, employment) measure size, not profile
    select indicator_values.*
    from {{ ref('int_cluster_indicator_values') }} as indicator_values
    inner join indicators
        on indicators.indicator_code = indicator_values.indicator_code
    where indicators.aggregation is distinct from 'sum'
        -- a value withheld by a quality check (null + quality_flag) is not a profile value
        and indicator_values.value is not null

),

needs as (

    select * from {{ ref('mart_sme_needs') }}

),

swot as (

    select * from {{ ref('stg_surveys__soa_swot') }}
    where is_latest_file

),

latest_indicator_values as (

    select distinct on (cluster_id, indicator_code)
        cluster_id,
        indicator_code,
        value

    from indicator_values
    order by cluster_id asc, indicator_code asc, year desc

),

indicator_z as (

    select
        cluster_id,
        indicator_code,
        (value - avg(value) over (partition by indicator_code))
            / nullif(stddev_pop(value) over (partition by indicator_code), 0) as z

    from latest_indicator_values

),

latest_needs as (

    select needs.cluster_id, needs.service_code, needs.gap
    from needs
    inner join (
        select by_wave.cluster_id, max(by_wave.wave) as wave
        from needs as by_wave
        group by by_wave.cluster_id
    ) as latest_wave
        on latest_wave.cluster_id = needs.cluster_id
        and latest_wave.wave = needs.wave
    where needs.gap is not null

),

pairs as (

    select
        a.cluster_id as cluster_a,
        b.cluster_id as cluster_b

    from clusters as a
    inner join clusters as b
        on a.cluster_id < b.cluster_id

),

indicator_cosine as (

    select
        pairs.cluster_a,
        pairs.cluster_b,
        count(*) as n_indicators,
        sum(za.z * zb.z) / nullif(sqrt(sum(za.z * za.z)) * sqrt(sum(zb.z * zb.z)), 0) as similarity

    from pairs
    inner join indicator_z as za
        on za.cluster_id = pairs.cluster_a
    inner join indicator_z as zb
        on zb.cluster_id = pairs.cluster_b
        and zb.indicator_code = za.indicator_code
    where za.z is not null and zb.z is not null
    group by pairs.cluster_a, pairs.cluster_b

),

needs_pairs as (

    select
        pairs.cluster_a,
        pairs.cluster_b,
        na.service_code,
        na.gap as gap_a,
        nb.gap as gap_b

    from pairs
    inner join latest_needs as na
        on na.cluster_id = pairs.cluster_a
    inner join latest_needs as nb
        on nb.cluster_id = pairs.cluster_b
        and nb.service_code = na.service_code

),

needs_cosine as (

    select
        cluster_a,
        cluster_b,
        count(*) as n_services,
        sum(gap_a * gap_b) / nullif(sqrt(sum(gap_a * gap_a)) * sqrt(sum(gap_b * gap_b)), 0) as similarity

    from needs_pairs
    group by cluster_a, cluster_b

),

shared_needs_ranked as (

    select
        needs_pairs.*,
        row_number() over (
            partition by cluster_a, cluster_b order by gap_a + gap_b desc, service_code
        ) as need_rank

    from needs_pairs
    where gap_a > 0 and gap_b > 0

),

shared_needs as (

    select
        cluster_a,
        cluster_b,
        string_agg(service_code, ',' order by need_rank) as shared_needs

    from shared_needs_ranked
    where need_rank <= {{ top_n }}
    group by cluster_a, cluster_b

),

latest_swot as (

    select swot.*
    from swot
    inner join (
        select by_year.cluster_id, max(by_year.year) as year
        from swot as by_year
        group by by_year.cluster_id
    ) as latest_year
        on latest_year.cluster_id = swot.cluster_id
        and latest_year.year = swot.year
    where swot.theme is not null

),

swot_matches as (

    -- (strong cluster, weak cluster, theme): one cluster's strength is another's weakness
    select
        strength.cluster_id as strong_cluster_id,
        weakness.cluster_id as weak_cluster_id,
        strength.theme

    from latest_swot as strength
    inner join latest_swot as weakness
        on weakness.theme = strength.theme
        and weakness.cluster_id <> strength.cluster_id
    where strength.swot_kind = 'strength'
        and weakness.swot_kind = 'weakness'

),

swot_synergies as (

    select
        least(strong_cluster_id, weak_cluster_id) as cluster_a,
        greatest(strong_cluster_id, weak_cluster_id) as cluster_b,
        string_agg(distinct theme, ',') filter (
            where strong_cluster_id < weak_cluster_id
        ) as a_strengths_for_b_weaknesses,
        string_agg(distinct theme, ',') filter (
            where strong_cluster_id > weak_cluster_id
        ) as b_strengths_for_a_weaknesses

    from swot_matches
    group by least(strong_cluster_id, weak_cluster_id), greatest(strong_cluster_id, weak_cluster_id)

),

final as (

    select
        cast(pairs.cluster_a as text) as cluster_a,
        cast(pairs.cluster_b as text) as cluster_b,
        {{ clean_numeric('indicator_cosine.similarity', 6) }} as indicator_similarity,
        cast(coalesce(indicator_cosine.n_indicators, 0) as integer) as n_indicators_compared,
        {{ clean_numeric('needs_cosine.similarity', 6) }} as needs_similarity,
        cast(coalesce(needs_cosine.n_services, 0) as integer) as n_services_compared,
        cast(shared_needs.shared_needs as text) as top_shared_needs,
        cast(swot_synergies.a_strengths_for_b_weaknesses as text) as a_strengths_for_b_weaknesses,
        cast(swot_synergies.b_strengths_for_a_weaknesses as text) as b_strengths_for_a_weaknesses,
        cast(nullif(concat_ws('; ',
            'joint service: ' || shared_needs.shared_needs,
            pairs.cluster_a || ' -> ' || pairs.cluster_b || ': ' || swot_synergies.a_strengths_for_b_weaknesses,
            pairs.cluster_b || ' -> ' || pairs.cluster_a || ': ' || swot_synergies.b_strengths_for_a_weaknesses
        ), '') as text) as synergy_candidates

    from pairs
    left join indicator_cosine
        on indicator_cosine.cluster_a = pairs.cluster_a
        and indicator_cosine.cluster_b = pairs.cluster_b
    left join needs_cosine
        on needs_cosine.cluster_a = pairs.cluster_a
        and needs_cosine.cluster_b = pairs.cluster_b
    left join shared_needs
        on shared_needs.cluster_a = pairs.cluster_a
        and shared_needs.cluster_b = pairs.cluster_b
    left join swot_synergies
        on swot_synergies.cluster_a = pairs.cluster_a
        and swot_synergies.cluster_b = pairs.cluster_b

)

select * from final
