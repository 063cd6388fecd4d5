-- 0001: schemas, raw Eurostat observations, audit tables. Idempotent.
create schema if not exists raw;
create schema if not exists audit;

-- One row per Eurostat cell that has a value or a status, latest published batch per dataset.
-- `dims` holds every dimension except geo and time (lower-case ids), `series_key` is those as
-- "k=v,k=v" in dimension order: (dataset, series_key, geo, time) is the observation key.
create table if not exists raw.eurostat_observations (
    dataset            text        not null,
    series_key         text        not null,
    dims               jsonb       not null,
    geo                text        not null,
    time               text        not null,
    value              numeric,
    obs_status         text,
    conf_status        text,
    source_updated_at  timestamptz,
    batch_id           text        not null,
    primary key (dataset, series_key, geo, time)
);

-- Every HTTP body / inbox file received, as archived (content-addressed).
create table if not exists audit.fetches (
    fetch_id     bigserial primary key,
    run_id       text,
    logical_date date,
    source       text not null,
    object       text not null,          -- dataset code or inbox file path
    url          text,
    http_status  int,
    sha256       text not null,
    size_bytes   bigint not null,
    fetched_at   timestamptz not null default now()
);

-- Per run and dataset: why it was fetched or skipped (change detection).
create table if not exists audit.dataset_checks (
    run_id             text not null,
    logical_date       date,
    source             text not null,
    object             text not null,
    decision           text not null check (decision in ('fetch', 'skip', 'replay', 'error')),
    reason             text not null,
    toc_last_update    date,
    source_updated_at  timestamptz,
    checked_at         timestamptz not null default now(),
    primary key (run_id, source, object)
);

-- One batch = one dataset payload or one survey file, identified by source, object and content hash.
create table if not exists audit.batches (
    batch_id      text primary key,
    source        text not null,
    object        text not null,
    sha256        text[] not null,
    run_id        text,
    logical_date  date,
    status        text not null check (status in ('received', 'validated', 'quarantined', 'loaded', 'failed')),
    reason        text,
    rows_parsed   bigint,
    rows_loaded   bigint,
    meta          jsonb not null default '{}',
    created_at    timestamptz not null default now(),
    updated_at    timestamptz not null default now()
);

-- Machine-readable reasons for quarantined batches.
create table if not exists audit.quarantine (
    batch_id   text not null,
    source     text not null,
    object     text not null,
    code       text not null,
    severity   text not null,
    message    text not null,
    file       text,
    row_number bigint,
    column_name text,
    expected   text,
    found      text,
    recorded_at timestamptz not null default now()
);
create index if not exists quarantine_batch on audit.quarantine (batch_id);

-- One summary per DAG run (what make run prints).
create table if not exists audit.run_summaries (
    run_id        text primary key,
    dag_id        text not null,
    logical_date  date,
    started_at    timestamptz,
    finished_at   timestamptz not null default now(),
    summary       jsonb not null
);

-- Last successfully loaded state per source object: the basis of change detection.
create table if not exists audit.source_state (
    source             text not null,
    object             text not null,
    batch_id           text not null,
    toc_last_update    date,
    source_updated_at  timestamptz,
    loaded_at          timestamptz not null default now(),
    primary key (source, object)
);
