{#-
    Offers and needs of each cluster's latest SME-survey wave (latest file), one row per member x direction x
    code, with the member's cross-sector interests as sorted comma-separated codes and as a bit mask (bit = rank of the code
    among all interest codes present), plus whether a needed service is a top-3 priority of that member.

    A table with an index on (direction, topic_code, interest_mask, cluster_id, respondent_pid): mart_matchmaking
    looks up the best offers for each need through it, so matchmaking grows with members, not members squared.
-#}
{{
    config(
        materialized='table',
        indexes=[{'columns': ['direction', 'topic_code', 'interest_mask', 'cluster_id', 'respondent_pid']}],
    )
}}

with

offers_needs as (

    select * from {{ ref('stg_surveys__sme_offers_needs') }}
    where is_latest_file

),

interests as (

    select * from {{ ref('stg_surveys__sme_interests') }}
    where is_latest_file

),

ratings as (

    select * from {{ ref('stg_surveys__sme_service_ratings') }}
    where is_latest_file

),

latest_waves as (

    select cluster_id, max(wave) as wave
    from offers_needs
    group by cluster_id

),

interest_bits as (

    -- at most 62 distinct cross-sector codes fit in the bigint mask (the survey contract has a handful)
    select cross_sector, dense_rank() over (order by cross_sector) - 1 as bit
    from (select distinct cross_sector from interests) as codes

),

member_interests as (

    select
        interests.cluster_id,
        interests.wave,
        interests.respondent_pid,
        string_agg(distinct interests.cross_sector, ',' order by interests.cross_sector) as cross_sectors,
        bit_or(cast(1 as bigint) << cast(interest_bits.bit as integer)) as interest_mask

    from interests
    inner join interest_bits
        on interest_bits.cross_sector = interests.cross_sector
    group by interests.cluster_id, interests.wave, interests.respondent_pid

),

profiled as (

    select
        offers_needs.cluster_id,
        offers_needs.wave,
        offers_needs.respondent_pid,
        offers_needs.direction,
        offers_needs.topic_code,
        coalesce(member_interests.cross_sectors, '') as cross_sectors,
        coalesce(member_interests.interest_mask, cast(0 as bigint)) as interest_mask,
        coalesce(ratings.is_priority_top3, false) as is_priority

    from offers_needs
    inner join latest_waves
        on latest_waves.cluster_id = offers_needs.cluster_id
        and latest_waves.wave = offers_needs.wave
    left join member_interests
        on member_interests.cluster_id = offers_needs.cluster_id
        and member_interests.wave = offers_needs.wave
        and member_interests.respondent_pid = offers_needs.respondent_pid
    left join ratings
        on ratings.cluster_id = offers_needs.cluster_id
        and ratings.wave = offers_needs.wave
        and ratings.respondent_pid = offers_needs.respondent_pid
        and ratings.service_code = offers_needs.topic_code

)

select distinct * from profiled
