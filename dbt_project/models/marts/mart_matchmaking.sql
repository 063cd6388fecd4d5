{#-
    B2B matchmaking candidates: for each need (member x code of the latest wave of its cluster), the best
    var('matchmaking_offers_per_need') offers of that code by members of OTHER clusters. Scored and explained:
      match_score = 1                                   the offer code equals the need code
                  + 0.25 x shared cross-sector interests (technology, energy, tourism, health)
                  + 0.5  if the needed service is among the needing member's top-3 priorities
    match_rank = 1..N for the (needing member, code): best score first; ties (the rule, scores are coarse) are
    broken by md5(needing member || offering member), a hash of the pair: stable from run to run and unrelated
    to cluster ids or member order, so no cluster is favoured by the alphabet.
    The score of an offer for a need only depends on the offer's interest mask, so the offers are looked up
    per distinct mask of the code and the best N kept (by the pair hash).
    Members are pseudonyms (respondent_pid): contact happens through the clusters.
-#}
{%- set per_need = var('matchmaking_offers_per_need', 5) | int -%}

with

codes as (

    select * from {{ ref('survey_codes') }}

),

needs as (

    select * from {{ ref('int_sme_offers_needs_profiled') }}
    where direction = 'need'

),

offer_masks as materialized (

    select distinct topic_code, interest_mask
    from {{ ref('int_sme_offers_needs_profiled') }}
    where direction = 'offer'

),

picked as (

    select
        offer.cluster_id as offer_cluster_id,
        offer.respondent_pid as offer_respondent_pid,
        offer.wave as offer_wave,
        need.cluster_id as need_cluster_id,
        need.respondent_pid as need_respondent_pid,
        need.wave as need_wave,
        need.topic_code,
        offer.n_shared_interests,
        array_to_string(
            array(
                select unnest(string_to_array(nullif(offer.cross_sectors, ''), ',')) as sector
                intersect
                select unnest(string_to_array(nullif(need.cross_sectors, ''), ',')) as sector
                order by sector
            ), ','
        ) as shared_interests,
        need.is_priority as is_need_priority,
        1 + 0.25 * offer.n_shared_interests + case when need.is_priority then 0.5 else 0 end as match_score,
        offer.pick_rank as match_rank

    from needs as need
    cross join lateral (

        select
            candidate.*,
            row_number() over (
                order by candidate.n_shared_interests desc, candidate.pair_hash asc, candidate.respondent_pid asc
            ) as pick_rank

        from (
            select
                best_of_mask.*,
                bit_count(cast(offer_masks.interest_mask & need.interest_mask as bit(64))) as n_shared_interests

            from offer_masks
            cross join lateral (
                select offer.cluster_id, offer.respondent_pid, offer.wave, offer.cross_sectors,
                    md5(need.respondent_pid || '|' || offer.respondent_pid) as pair_hash
                -- the table itself (not a CTE) so that its lookup index is used
                from {{ ref('int_sme_offers_needs_profiled') }} as offer
                where offer.direction = 'offer'
                    and offer.topic_code = need.topic_code
                    and offer.interest_mask = offer_masks.interest_mask
                    and offer.cluster_id <> need.cluster_id
                order by pair_hash, offer.respondent_pid
                limit {{ per_need }}
            ) as best_of_mask
            where offer_masks.topic_code = need.topic_code
        ) as candidate
        order by pick_rank
        limit {{ per_need }}

    ) as offer

),

final as (

    select
        cast(picked.offer_cluster_id as text) as offer_cluster_id,
        cast(picked.offer_respondent_pid as text) as offer_respondent_pid,
        cast(picked.need_cluster_id as text) as need_cluster_id,
        cast(picked.need_respondent_pid as text) as need_respondent_pid,
        cast(picked.topic_code as text) as topic_code,
        cast(codes.label as text) as topic_label,
        cast(codes.code_list as text) as topic_kind,
        cast(picked.offer_wave as integer) as offer_wave,
        cast(picked.need_wave as integer) as need_wave,
        cast(picked.n_shared_interests as integer) as n_shared_interests,
        cast(nullif(picked.shared_interests, '') as text) as shared_interests,
        cast(picked.is_need_priority as boolean) as is_need_priority,
        {{ clean_numeric('picked.match_score', 4) }} as match_score,
        cast(picked.match_rank as integer) as match_rank,
        cast(
            'member ' || picked.offer_respondent_pid || ' (' || picked.offer_cluster_id || ') offers '
            || coalesce(codes.label, picked.topic_code) || ', which member ' || picked.need_respondent_pid
            || ' (' || picked.need_cluster_id || ') is looking for'
            || case when picked.n_shared_interests > 0
                then '; shared cross-sector interests: ' || picked.shared_interests else '' end
            || case when picked.is_need_priority
                then '; a top-3 priority of the member looking for it' else '' end
        as text) as explanation

    from picked
    left join codes
        on codes.code = picked.topic_code

)

select * from final
