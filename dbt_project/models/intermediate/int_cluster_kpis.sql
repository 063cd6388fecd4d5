{#-
    Layer-B cluster organisation KPIs per cluster x year (state of affairs, latest file per wave).
      members_total         = sum of members by type
      sme_share_of_members  = members_sme / members_total
      member_growth         = (members_total - members_total_prev) / members_total_prev  (previous year's file)
      member_retention      = 1 - members_left / members_total_prev
      project_success_rate  = joint_projects_won / joint_projects_submitted
-#}
with

profile as (

    select * from {{ ref('stg_surveys__soa_profile') }}
    where is_latest_file

),

kpis as (

    select * from {{ ref('stg_surveys__soa_kpis') }}
    where is_latest_file

),

joined as (

    select
        coalesce(profile.cluster_id, kpis.cluster_id) as cluster_id,
        coalesce(profile.year, kpis.year) as year,
        profile.members_total,
        profile.members_sme,
        profile.members_large_company,
        profile.members_research,
        profile.members_public,
        profile.members_other,
        profile.member_employees,
        profile.member_turnover_eur,
        profile.innovation_turnover_eur,
        profile.staff_fte,
        profile.labels,
        profile.labels_count,
        kpis.events,
        kpis.b2b_meetings,
        kpis.matchmaking_contacts,
        kpis.joint_projects_submitted,
        kpis.joint_projects_won,
        kpis.services_offered,
        kpis.cross_sector_collaborations,
        kpis.members_joined,
        kpis.members_left,
        concat_ws(
            ',', profile.batch_id, case when kpis.batch_id is distinct from profile.batch_id then kpis.batch_id end
        ) as batch_ids

    from profile
    full outer join kpis
        on kpis.cluster_id = profile.cluster_id
        and kpis.year = profile.year

),

with_previous as (

    select
        joined.*,
        previous.members_total as members_total_prev

    from joined
    left join joined as previous
        on previous.cluster_id = joined.cluster_id
        and previous.year = joined.year - 1

),

final as (

    select
        cluster_id,
        year,
        members_total,
        members_sme,
        members_large_company,
        members_research,
        members_public,
        members_other,
        {{ clean_numeric(safe_divide('members_sme', 'members_total')) }} as sme_share_of_members,
        members_total_prev,
        {{ clean_numeric(safe_divide('members_total - members_total_prev', 'members_total_prev')) }} as member_growth,
        {{ clean_numeric('1 - ' ~ safe_divide('members_left', 'members_total_prev')) }} as member_retention,
        members_joined,
        members_left,
        member_employees,
        member_turnover_eur,
        innovation_turnover_eur,
        staff_fte,
        events,
        b2b_meetings,
        matchmaking_contacts,
        joint_projects_submitted,
        joint_projects_won,
        {{ clean_numeric(safe_divide('joint_projects_won', 'joint_projects_submitted')) }} as project_success_rate,
        services_offered,
        cross_sector_collaborations,
        labels,
        labels_count,
        batch_ids

    from with_previous

)

select * from final
