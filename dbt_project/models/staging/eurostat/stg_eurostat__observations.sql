{#-
    One row per Eurostat observation (dataset x series x geo x time), latest published values.

    Incremental: raw.eurostat_observations is replaced per dataset batch, so a night only re-types the
    datasets whose batch changed (delete+insert on `dataset`); unchanged datasets are not touched.
    The key (dataset, series_key, geo_code, time_period) is a unique index: a duplicate fails the insert, instead of
    a data test re-reading the whole history every night.
    "As published on date D" (var as_of_date) is int_eurostat_observations_as_published, read from the snapshot.
    A backfill of date D (var schema_prefix set: built into asof_* beside the current marts) is built in full and
    leaves out a dataset whose batch in raw was first received after D (raw holds one batch per dataset; the
    backfill put back the batch received on or before D where there was one).
-#}
-- depends_on: {{ source('audit', 'batch_receipts') }}
{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='dataset',
        on_schema_change='fail',
        full_refresh=(var('schema_prefix', none) is not none),
        indexes=[
            {'columns': ['dataset', 'batch_id']},
            {'columns': ['dataset', 'series_key', 'geo_code', 'time_period'], 'unique': True},
        ],
    )
}}

with

source as (

    select * from {{ source('eurostat', 'eurostat_observations') }} as observations
    where true
    {%- if var('schema_prefix', none) and var('logical_date', none) %}
        -- as of the backfill's date: received on or before it (or before receipts were recorded)
        and observations.batch_id not in (
            select receipts.batch_id from {{ source('audit', 'batch_receipts') }} as receipts
            group by receipts.batch_id
            having bool_and(receipts.logical_date > cast({{ sql_literal(var('logical_date')) }} as date))
        )
    {%- endif %}
    {% if is_incremental() %}
    -- every row of the datasets with a batch not typed yet (new or replaced since the last run)
        and dataset in (
        select distinct loaded.dataset
        from {{ source('eurostat', 'eurostat_observations') }} as loaded
        where (loaded.dataset, loaded.batch_id) not in (
            select typed.dataset, typed.batch_id from ({{ distinct_pairs(this, 'dataset', 'batch_id') }}) as typed
        )
    )
    {% endif %}

),

renamed as (

    select
{{ eurostat_observation_columns() }}

    from source

)

select * from renamed
