{#-
    The typed columns of a Eurostat observation, from a relation with raw.eurostat_observations' columns
    (dataset, series_key, dims, geo, time, value, obs_status, conf_status, source_updated_at, batch_id).
    Shared by stg_eurostat__observations (latest, from raw) and int_eurostat_observations_as_published
    (from the snapshot) so both type time and flags identically.
-#}
{% macro eurostat_observation_columns() -%}
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
        -- Eurostat's flag letters are lower case, an SDMX provider's CL_OBS_STATUS codes upper case, with the same
        -- meanings for these (p/P provisional, e/E estimated, b/B break, m/M missing)
        coalesce(position('p' in lower(obs_status)) > 0, false) as is_provisional,
        coalesce(position('e' in lower(obs_status)) > 0, false) as is_estimated,
        coalesce(position('b' in lower(obs_status)) > 0, false) as is_break,
        coalesce(position('C' in upper(conf_status)) > 0, false) as is_confidential,
        coalesce(position('m' in lower(obs_status)) > 0, false) as is_missing,

        -- lineage
        source_updated_at,
        batch_id
{%- endmacro %}
