{#-
    B2B matchmaking candidates: one row per (offering member, needing member, code) where a member
    of one cluster offers what a member of ANOTHER cluster is looking for (latest wave of each
    cluster, latest file). Scored and explained:
      match_score = 1                                   the offer code equals the need code
                  + 0.25 x shared cross-sector interests (technology, energy, tourism, health)
                  + 0.5  if the needed service is among the needing member's top-3 priorities
    match_rank = rank of the offer for the (needing member, code), best score first.
    Members are pseudonyms (respondent_pid): contact happens through the clusters.
-#}
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

codes as (

    select * from {{ ref('survey_codes') }}

),

latest as (

    select offers_needs.*
    from offers_needs
    inner join (
        select cluster_id, max(wave) as wave from offers_needs group by cluster_id
    ) as latest_wave
        on latest_wave.cluster_id = offers_needs.cluster_id
        and latest_wave.wave = offers_needs.wave

),

candidate_pairs as (

    select
        offer.cluster_id as offer_cluster_id,
        offer.respondent_pid as offer_respondent_pid,
        offer.wave as offer_wave,
        need.cluster_id as need_cluster_id,
        need.respondent_pid as need_respondent_pid,
        need.wave as need_wave,
        need.topic_code

    from latest as offer
    inner join latest as need
        on need.topic_code = offer.topic_code
        and need.cluster_id <> offer.cluster_id
    where offer.direction = 'offer'
        and need.direction = 'need'

),

shared_interests as (

    select
        candidate_pairs.offer_respondent_pid,
        candidate_pairs.offer_cluster_id,
        candidate_pairs.need_respondent_pid,
        candidate_pairs.need_cluster_id,
        candidate_pairs.topic_code,
        count(*) as n_shared_interests,
        string_agg(offer_interest.cross_sector, ',' order by offer_interest.cross_sector) as shared_interests

    from candidate_pairs
    inner join interests as offer_interest
        on offer_interest.cluster_id = candidate_pairs.offer_cluster_id
        and offer_interest.wave = candidate_pairs.offer_wave
        and offer_interest.respondent_pid = candidate_pairs.offer_respondent_pid
    inner join interests as need_interest
        on need_interest.cluster_id = candidate_pairs.need_cluster_id
        and need_interest.wave = candidate_pairs.need_wave
        and need_interest.respondent_pid = candidate_pairs.need_respondent_pid
        and need_interest.cross_sector = offer_interest.cross_sector
    group by 1, 2, 3, 4, 5

),

scored as (

    select
        candidate_pairs.*,
        coalesce(shared_interests.n_shared_interests, 0) as n_shared_interests,
        shared_interests.shared_interests,
        coalesce(need_rating.is_priority_top3, false) as is_need_priority,
        1
            + 0.25 * coalesce(shared_interests.n_shared_interests, 0)
            + case when coalesce(need_rating.is_priority_top3, false) then 0.5 else 0 end
            as match_score

    from candidate_pairs
    left join shared_interests
        on shared_interests.offer_cluster_id = candidate_pairs.offer_cluster_id
        and shared_interests.offer_respondent_pid = candidate_pairs.offer_respondent_pid
        and shared_interests.need_cluster_id = candidate_pairs.need_cluster_id
        and shared_interests.need_respondent_pid = candidate_pairs.need_respondent_pid
        and shared_interests.topic_code = candidate_pairs.topic_code
    left join ratings as need_rating
        on need_rating.cluster_id = candidate_pairs.need_cluster_id
        and need_rating.wave = candidate_pairs.need_wave
        and need_rating.respondent_pid = candidate_pairs.need_respondent_pid
        and need_rating.service_code = candidate_pairs.topic_code

),

final as (

    select
        cast(scored.offer_cluster_id as text) as offer_cluster_id,
        cast(scored.offer_respondent_pid as text) as offer_respondent_pid,
        cast(scored.need_cluster_id as text) as need_cluster_id,
        cast(scored.need_respondent_pid as text) as need_respondent_pid,
        cast(scored.topic_code as text) as topic_code,
        cast(codes.label as text) as topic_label,
        cast(codes.code_list as text) as topic_kind,
        cast(scored.offer_wave as integer) as offer_wave,
        cast(scored.need_wave as integer) as need_wave,
        cast(scored.n_shared_interests as integer) as n_shared_interests,
        cast(scored.shared_interests as text) as shared_interests,
        cast(scored.is_need_priority as boolean) as is_need_priority,
        {{ clean_numeric('scored.match_score', 4) }} as match_score,
        cast(rank() over (
            partition by scored.need_cluster_id, scored.need_respondent_pid, scored.topic_code
            order by scored.match_score desc
        ) as integer) as match_rank,
        cast(
            'member ' || scored.offer_respondent_pid || ' (' || scored.offer_cluster_id || ') offers '
            || coalesce(codes.label, scored.topic_code) || ', which member ' || scored.need_respondent_pid
            || ' (' || scored.need_cluster_id || ') is looking for'
            || case when scored.n_shared_interests > 0
                then '; shared cross-sector interests: ' || scored.shared_interests else '' end
            || case when scored.is_need_priority
                then '; a top-3 priority of the member looking for it' else '' end
        as text) as explanation

    from scored
    left join codes
        on codes.code = scored.topic_code

)

select * from final
