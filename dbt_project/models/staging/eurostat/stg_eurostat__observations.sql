{#-
    One row per Eurostat observation (dataset x series x geo x time).
    With var('as_of_date') set, the rows come from the snapshot instead of raw:
    for each observation the version whose publication stamp
    (source_updated_at, else the snapshot's dbt_valid_from) is the latest one <= as_of_date,
    i.e. the value "as published on date D".
-#}
{%- set as_of_date = var('as_of_date', none) -%}

with

{% if as_of_date %}
snapshot_versions as (

    select
        *,
        row_number() over (
            partition by dataset, series_key, geo, time
            order by coalesce(source_updated_at, dbt_valid_from) desc, dbt_valid_from desc
        ) as version_rank

    from {{ ref('snap_eurostat_observations') }}
    where coalesce(source_updated_at, dbt_valid_from) <= cast({{ sql_literal(as_of_date) }} as timestamptz)

),

source as (

    select
        dataset, series_key, dims, geo, time, value,
        obs_status, conf_status, source_updated_at, batch_id

    from snapshot_versions
    where version_rank = 1

),
{% else %}
source as (

    select * from {{ source('eurostat', 'eurostat_observations') }}

),
{% endif %}

renamed as (

    select
        -- ids
        dataset,
        series_key,
        dims,
        geo as geo_code,
        time as time_period,

        -- time
        cast(substring(time from 1 for 4) as integer) as year,
        case
            when time ~ '^[0-9]{4}$' then 'annual'
            when time ~ '^[0-9]{4}-?S[12]$' then 'semester'
            when time ~ '^[0-9]{4}-?Q[1-4]$' then 'quarter'
            when time ~ '^[0-9]{4}-?M?[0-9]{2}$' then 'month'
            else 'other'
        end as period_type,
        case
            when time ~ '^[0-9]{4}$' then 0
            else cast(nullif(regexp_replace(substring(time from 5), '[^0-9]', '', 'g'), '') as integer)
        end as period_number,

        -- value and flags
        cast(value as numeric) as value,
        nullif(trim(obs_status), '') as obs_status,
        nullif(trim(conf_status), '') as conf_status,
        coalesce(position('p' in obs_status) > 0, false) as is_provisional,
        coalesce(position('e' in obs_status) > 0, false) as is_estimated,
        coalesce(position('b' in obs_status) > 0, false) as is_break,
        coalesce(position('C' in upper(conf_status)) > 0, false) as is_confidential,
        coalesce(position('m' in obs_status) > 0, false) as is_missing,

        -- lineage
        source_updated_at,
        batch_id

    from source

)

select * from renamed
