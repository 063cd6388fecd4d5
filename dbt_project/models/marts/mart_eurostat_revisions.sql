{#-
    Revisions of Eurostat observations, one row per observation version after the first one
    (Eurostat overwrites revised values silently; the snapshot keeps every published version).
-#}
with

revised_keys as (

    -- observations with more than one version: only those have a closed version (hard_deletes: ignore
    -- never closes the only version of an observation), so the window below sorts these, not the history
    select distinct dataset, series_key, geo, time
    from {{ ref('snap_eurostat_observations') }}
    where dbt_valid_to is not null

),

versions as (

    select
        dataset,
        series_key,
        geo as geo_code,
        time as time_period,
        value,
        obs_status,
        conf_status,
        source_updated_at,
        batch_id,
        dbt_valid_from,
        dbt_valid_to,
        row_number() over (
            partition by dataset, series_key, geo, time order by dbt_valid_from
        ) as version_number,
        lag(value) over (
            partition by dataset, series_key, geo, time order by dbt_valid_from
        ) as previous_value,
        lag(obs_status) over (
            partition by dataset, series_key, geo, time order by dbt_valid_from
        ) as previous_obs_status,
        lag(source_updated_at) over (
            partition by dataset, series_key, geo, time order by dbt_valid_from
        ) as previous_source_updated_at,
        lag(batch_id) over (
            partition by dataset, series_key, geo, time order by dbt_valid_from
        ) as previous_batch_id

    from {{ ref('snap_eurostat_observations') }} as snapshotted
    where exists (
        select 1
        from revised_keys
        where revised_keys.dataset = snapshotted.dataset
            and revised_keys.series_key = snapshotted.series_key
            and revised_keys.geo = snapshotted.geo
            and revised_keys.time = snapshotted.time
    )

),

final as (

    select
        cast(dataset as text) as dataset,
        cast(series_key as text) as series_key,
        cast(geo_code as text) as geo_code,
        cast(time_period as text) as time_period,
        cast(version_number as integer) as version_number,
        {{ clean_numeric('previous_value') }} as previous_value,
        {{ clean_numeric('value') }} as value,
        {{ clean_numeric('value - previous_value') }} as revision_delta,
        {{ clean_numeric(safe_divide('100 * (value - previous_value)', 'abs(previous_value)'), 4) }} as revision_pct,
        cast(previous_obs_status as text) as previous_obs_status,
        cast(obs_status as text) as obs_status,
        cast(previous_source_updated_at as timestamptz) as previous_source_updated_at,
        cast(source_updated_at as timestamptz) as source_updated_at,
        cast(dbt_valid_from as timestamptz) as revision_detected_at,
        cast(dbt_valid_to is null as boolean) as is_current,
        cast(previous_batch_id as text) as previous_batch_id,
        cast(batch_id as text) as batch_id

    from versions
    where version_number > 1

)

select * from final
