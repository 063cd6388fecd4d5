{#- Member outcomes of the SME needs survey per cluster x wave (layer C), latest file only. -#}
with

respondents as (

    select * from {{ ref('stg_surveys__sme_respondents') }}
    where is_latest_file

),

ratings as (

    select * from {{ ref('stg_surveys__sme_service_ratings') }}
    where is_latest_file

),

interests as (

    select * from {{ ref('stg_surveys__sme_interests') }}
    where is_latest_file

),

respondent_totals as (

    select
        cluster_id,
        wave,
        count(*) as n_respondents,
        count(*) filter (where is_sme) as n_sme_respondents,
        avg(digital_maturity) as mean_digital_maturity,
        count(offers_low_carbon) as n_low_carbon_answers,
        100.0 * count(*) filter (where offers_low_carbon) / nullif(count(offers_low_carbon), 0)
            as low_carbon_share_pct,
        string_agg(distinct batch_id, ',') as batch_ids

    from respondents
    group by cluster_id, wave

),

rating_totals as (

    select
        cluster_id,
        wave,
        avg(gap) as mean_gap,
        avg(impact) as mean_impact

    from ratings
    group by cluster_id, wave

),

interest_totals as (

    select
        interests.cluster_id,
        interests.wave
        {%- for sector in var('cross_sectors') %},
        count(distinct interests.respondent_pid) filter (where interests.cross_sector = '{{ sector }}')
            as n_interest_{{ sector }}
        {%- endfor %}

    from interests
    group by interests.cluster_id, interests.wave

),

final as (

    select
        respondent_totals.cluster_id,
        respondent_totals.wave,
        respondent_totals.n_respondents,
        respondent_totals.n_sme_respondents,
        {{ clean_numeric('respondent_totals.mean_digital_maturity') }} as mean_digital_maturity,
        {{ clean_numeric('respondent_totals.low_carbon_share_pct') }} as low_carbon_share_pct,
        {{ clean_numeric('rating_totals.mean_gap') }} as mean_gap,
        {{ clean_numeric('rating_totals.mean_impact') }} as mean_impact
        {%- for sector in var('cross_sectors') %},
        {{ clean_numeric(safe_divide(
            'coalesce(interest_totals.n_interest_' ~ sector ~ ', 0)', 'respondent_totals.n_respondents'
        )) }}
            as interest_share_{{ sector }}
        {%- endfor %},
        respondent_totals.batch_ids

    from respondent_totals
    left join rating_totals
        on rating_totals.cluster_id = respondent_totals.cluster_id
        and rating_totals.wave = respondent_totals.wave
    left join interest_totals
        on interest_totals.cluster_id = respondent_totals.cluster_id
        and interest_totals.wave = respondent_totals.wave

)

select * from final
