{#- Layer-B cluster organisation KPIs per cluster x year (formulas: int_cluster_kpis). -#}
with

kpis as (

    select * from {{ ref('int_cluster_kpis') }}

),

outcomes as (

    select * from {{ ref('int_sme_cluster_wave_outcomes') }}

),

clusters as (

    select * from {{ ref('clusters') }}

),

final as (

    select
        cast(kpis.cluster_id as text) as cluster_id,
        cast(kpis.year as integer) as year,
        cast(clusters.cluster_name as text) as cluster_name,
        cast(kpis.members_total as integer) as members_total,
        cast(kpis.members_sme as integer) as members_sme,
        cast(kpis.members_large_company as integer) as members_large_company,
        cast(kpis.members_research as integer) as members_research,
        cast(kpis.members_public as integer) as members_public,
        cast(kpis.members_other as integer) as members_other,
        {{ clean_numeric('kpis.sme_share_of_members', 6) }} as sme_share_of_members,
        cast(kpis.members_total_prev as integer) as members_total_prev,
        {{ clean_numeric('kpis.member_growth', 6) }} as member_growth,
        {{ clean_numeric('kpis.member_retention', 6) }} as member_retention,
        cast(kpis.members_joined as integer) as members_joined,
        cast(kpis.members_left as integer) as members_left,
        cast(kpis.member_employees as integer) as member_employees,
        cast(kpis.member_turnover_eur as numeric) as member_turnover_eur,
        cast(kpis.innovation_turnover_eur as numeric) as innovation_turnover_eur,
        cast(kpis.staff_fte as numeric) as staff_fte,
        cast(kpis.events as integer) as events,
        cast(kpis.b2b_meetings as integer) as b2b_meetings,
        cast(kpis.matchmaking_contacts as integer) as matchmaking_contacts,
        cast(kpis.joint_projects_submitted as integer) as joint_projects_submitted,
        cast(kpis.joint_projects_won as integer) as joint_projects_won,
        {{ clean_numeric('kpis.project_success_rate', 6) }} as project_success_rate,
        cast(kpis.services_offered as integer) as services_offered,
        cast(kpis.cross_sector_collaborations as integer) as cross_sector_collaborations,
        cast(kpis.labels as text) as labels,
        cast(kpis.labels_count as integer) as labels_count,
        cast(outcomes.n_respondents as integer) as sme_survey_respondents,
        cast(outcomes.mean_digital_maturity as numeric) as sme_mean_digital_maturity,
        cast(outcomes.low_carbon_share_pct as numeric) as sme_low_carbon_share_pct,
        cast(kpis.batch_ids as text) as batch_ids

    from kpis
    left join clusters
        on clusters.cluster_id = kpis.cluster_id
    left join outcomes
        on outcomes.cluster_id = kpis.cluster_id
        and outcomes.wave = kpis.year

)

select * from final
