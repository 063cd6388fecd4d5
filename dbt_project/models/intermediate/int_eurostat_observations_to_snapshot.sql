{#-
    The raw Eurostat observations the snapshot still has to compare: every row of each dataset that
    holds a batch no row of `snap_eurostat_observations` carries yet (a new or re-published batch).
    The snapshot (hard_deletes: ignore) reads this instead of the whole raw table, so its nightly
    cost follows the datasets that changed, not the history. Before the snapshot exists (first
    build) every row. A dataset re-published with identical values leaves no row of its new batch in
    the snapshot, so it is compared again on later nights: still correct, only not skipped.
    A table, not a view: dbt's snapshot SQL reads its relation several times, and the pending datasets
    are worked out once per build (just before the snapshot) instead of once per read.
-#}
{{ config(materialized='table') }}
{%- set snapshot_nodes = graph.nodes.values()
    | selectattr('resource_type', 'equalto', 'snapshot')
    | selectattr('name', 'equalto', 'snap_eurostat_observations') | list -%}
{%- set snapshot = adapter.get_relation(
        database=snapshot_nodes[0].database, schema=snapshot_nodes[0].schema, identifier=snapshot_nodes[0].alias
    ) if execute and snapshot_nodes else none -%}

with

observations as (

    -- depends_on: {{ ref('stg_eurostat__observations') }} (its batch list, below)
    select * from {{ source('eurostat', 'eurostat_observations') }}

),

{%- if snapshot is not none %}

-- used below under the same condition (sqlfluff renders the two ifs apart)
pending_datasets as (  -- noqa: ST03

    -- the batches as typed by staging this run (the same as raw's), listed through its (dataset, batch_id) index
    select distinct batches.dataset

    from ({{ distinct_pairs(ref('stg_eurostat__observations'), 'dataset', 'batch_id') }}) as batches
    where not exists (
        select 1
        from {{ snapshot }} as snapshotted
        where snapshotted.dataset = batches.dataset
            and snapshotted.batch_id = batches.batch_id
    )

),
{%- endif %}

final as (

    select observations.*

    from observations
    {%- if snapshot is not none %}
    where observations.dataset in (select pending_datasets.dataset from pending_datasets)
    {%- endif %}

)

-- every column of the raw table, as the snapshot expects
select * from final  -- noqa: AM04
