with

source as (

    select * from {{ source('surveys', 'survey_soa_kpis') }}

),

versioned as (

    {{ latest_survey_file('source') }}

),

renamed as (

    select
        cluster as cluster_id,
        wave as year,
        file_sha256,
        batch_id,

        events,
        b2b_meetings,
        matchmaking_contacts,
        joint_projects_submitted,
        joint_projects_won,
        services_offered,
        cross_sector_collaborations,
        members_joined,
        members_left,

        is_latest_file

    from versioned

)

select * from renamed
