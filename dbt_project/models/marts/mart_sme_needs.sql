{#-
    SME needs per cluster x service x wave (latest survey file per cluster and wave).
      mean_importance / mean_satisfaction  over the respondents who answered (1-5; "not used /
                                           don't know" is missing, never 0)
      gap                = mean_importance - mean_satisfaction
      mean_paired_gap    = mean of (importance - satisfaction) over respondents answering both
      rank_in_cluster    = rank of the service by gap within the cluster and wave (1 = largest gap)
      partnership_gap    = gap over all respondents of all clusters in the wave (pooled)
      partnership_rank   = rank of the service by partnership_gap in the wave
    Cross-sector interest shares (cluster x wave) are repeated on each row.
-#}
with

ratings as (

    select * from {{ ref('stg_surveys__sme_service_ratings') }}
    where is_latest_file

),

outcomes as (

    select * from {{ ref('int_sme_cluster_wave_outcomes') }}

),

services as (

    select * from {{ ref('survey_codes') }}
    where code_list = 'services'

),

by_cluster as (

    select
        cluster_id,
        service_code,
        wave,
        count(distinct respondent_pid) filter (
            where importance is not null or satisfaction is not null or impact is not null
        ) as n_respondents,
        count(importance) as n_importance,
        count(satisfaction) as n_satisfaction,
        avg(importance) as mean_importance,
        avg(satisfaction) as mean_satisfaction,
        avg(gap) as mean_paired_gap,
        avg(impact) as mean_impact,
        avg(case when used_last_12_months then 1.0 when used_last_12_months is not null then 0.0 end)
            as usage_share,
        avg(case when is_priority_top3 then 1.0 else 0.0 end) as priority_top3_share,
        string_agg(distinct batch_id, ',') as batch_ids

    from ratings
    group by cluster_id, service_code, wave

),

partnership as (

    select
        service_code,
        wave,
        avg(importance) - avg(satisfaction) as partnership_gap

    from ratings
    group by service_code, wave

),

ranked as (

    select
        by_cluster.*,
        by_cluster.mean_importance - by_cluster.mean_satisfaction as gap,
        partnership.partnership_gap,
        case when by_cluster.mean_importance - by_cluster.mean_satisfaction is not null then
            rank() over (
                partition by by_cluster.cluster_id, by_cluster.wave,
                    (by_cluster.mean_importance - by_cluster.mean_satisfaction) is null
                order by by_cluster.mean_importance - by_cluster.mean_satisfaction desc
            )
        end as rank_in_cluster

    from by_cluster
    inner join partnership
        on partnership.service_code = by_cluster.service_code
        and partnership.wave = by_cluster.wave

),

partnership_ranked as (

    select
        service_code,
        wave,
        case when partnership_gap is not null then
            rank() over (partition by wave, partnership_gap is null order by partnership_gap desc)
        end as partnership_rank

    from partnership

),

final as (

    select
        cast(ranked.cluster_id as text) as cluster_id,
        cast(ranked.service_code as text) as service_code,
        cast(ranked.wave as integer) as wave,
        cast(services.label as text) as service_label,
        cast(ranked.n_respondents as integer) as n_respondents,
        cast(ranked.n_importance as integer) as n_importance,
        cast(ranked.n_satisfaction as integer) as n_satisfaction,
        {{ clean_numeric('ranked.mean_importance') }} as mean_importance,
        {{ clean_numeric('ranked.mean_satisfaction') }} as mean_satisfaction,
        {{ clean_numeric('ranked.gap') }} as gap,
        {{ clean_numeric('ranked.mean_paired_gap') }} as mean_paired_gap,
        {{ clean_numeric('ranked.mean_impact') }} as mean_impact,
        {{ clean_numeric('ranked.usage_share') }} as usage_share,
        {{ clean_numeric('ranked.priority_top3_share') }} as priority_top3_share,
        cast(ranked.rank_in_cluster as integer) as rank_in_cluster,
        {{ clean_numeric('ranked.partnership_gap') }} as partnership_gap,
        cast(partnership_ranked.partnership_rank as integer) as partnership_rank,
        cast(outcomes.n_respondents as integer) as cluster_wave_respondents
        {%- for sector in var('cross_sectors') %},
        cast(outcomes.interest_share_{{ sector }} as numeric) as interest_share_{{ sector }}
        {%- endfor %},
        cast(ranked.batch_ids as text) as batch_ids

    from ranked
    inner join partnership_ranked
        on partnership_ranked.service_code = ranked.service_code
        and partnership_ranked.wave = ranked.wave
    left join services
        on services.code = ranked.service_code
    left join outcomes
        on outcomes.cluster_id = ranked.cluster_id
        and outcomes.wave = ranked.wave

)

select * from final
