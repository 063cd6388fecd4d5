{#-
    Eurostat observations as published on var('as_of_date') (default: now), from the snapshot: per observation
    the version whose publication stamp (source_updated_at, else the snapshot's dbt_valid_from) is the latest
    one <= the date. Same columns as stg_eurostat__observations. Used instead of it when as_of_date is set.
-#}
{%- set as_of_date = var('as_of_date', none) -%}

with

snapshot_versions as (

    select
        *,
        row_number() over (
            partition by dataset, series_key, geo, time
            order by coalesce(source_updated_at, dbt_valid_from) desc, dbt_valid_from desc
        ) as version_rank

    from {{ ref('snap_eurostat_observations') }}
    where coalesce(source_updated_at, dbt_valid_from)
        <= {% if as_of_date %}cast({{ sql_literal(as_of_date) }} as timestamptz){% else %}now(){% endif %}

),

published as (

    select
{{ eurostat_observation_columns() }}

    from snapshot_versions
    where version_rank = 1

)

select * from published
