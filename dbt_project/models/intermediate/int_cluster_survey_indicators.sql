{#-
    Survey-based indicator values per cluster x indicator x year (layers B and C).
    Every candidate survey field is unpivoted to (survey_field, value); an indicator of the
    `indicators` seed picks one by `survey_field`, so adding a survey indicator is a seed row.
-#}
with

indicators as (

    select * from {{ ref('indicators') }}
    where source_type in ('survey_state_of_affairs', 'survey_sme_needs')

),

kpis as (

    select * from {{ ref('int_cluster_kpis') }}

),

outcomes as (

    select * from {{ ref('int_sme_cluster_wave_outcomes') }}

),

kpi_fields as (

    select
        kpis.cluster_id,
        kpis.year,
        'survey_state_of_affairs' as source_type,
        fields.survey_field,
        fields.value,
        kpis.batch_ids

    from kpis
    cross join lateral (
        values
            ('members_total', cast(kpis.members_total as numeric)),
            ('members_sme', cast(kpis.members_sme as numeric)),
            ('members_sme_share', 100 * kpis.sme_share_of_members),
            ('member_growth', kpis.member_growth),
            ('member_retention', kpis.member_retention),
            ('events', cast(kpis.events as numeric)),
            ('b2b_meetings', cast(kpis.b2b_meetings as numeric)),
            ('matchmaking_contacts', cast(kpis.matchmaking_contacts as numeric)),
            ('joint_projects_submitted', cast(kpis.joint_projects_submitted as numeric)),
            ('joint_projects_won', cast(kpis.joint_projects_won as numeric)),
            ('services_offered', cast(kpis.services_offered as numeric)),
            ('cross_sector_collaborations', cast(kpis.cross_sector_collaborations as numeric)),
            ('labels_count', cast(kpis.labels_count as numeric)),
            ('staff_fte', kpis.staff_fte),
            ('innovation_turnover_eur', kpis.innovation_turnover_eur)
    ) as fields (survey_field, value)

),

outcome_fields as (

    select
        outcomes.cluster_id,
        outcomes.wave as year,
        'survey_sme_needs' as source_type,
        fields.survey_field,
        fields.value,
        outcomes.batch_ids

    from outcomes
    cross join lateral (
        values
            ('n_respondents', cast(outcomes.n_respondents as numeric)),
            ('gap', outcomes.mean_gap),
            ('impact', outcomes.mean_impact),
            ('digital_maturity', outcomes.mean_digital_maturity),
            ('offers_low_carbon', outcomes.low_carbon_share_pct)
    ) as fields (survey_field, value)

),

fields as (

    select * from kpi_fields
    union all
    select * from outcome_fields

),

final as (

    select
        fields.cluster_id,
        indicators.indicator_code,
        fields.year,
        'cluster' as geo_scope,
        cast(null as text) as geo_codes,
        {{ clean_numeric('fields.value') }} as value,
        cast(null as numeric) as national_value,
        cast(null as numeric) as eu27_value,
        false as is_provisional,
        false as is_estimated,
        false as is_confidential,
        false as is_break,
        cast(null as text) as nuts_versions,
        fields.batch_ids

    from fields
    inner join indicators
        on indicators.source_type = fields.source_type
        and indicators.survey_field = fields.survey_field
    where fields.value is not null

)

select * from final
