-- 0011: freshness checked every nightly run (issue #18.4): one row per Eurostat dataset and per cluster and survey
-- instrument, graded by ingest.status.freshness (catalogue.yml sources.<source>.freshness), written by the publish
-- stage as the loader role. Dataset codes, cluster and instrument ids, dates and ages only: never a file name, a
-- row or a value. Idempotent.
create table if not exists audit.freshness_checks (
    run_id       text        not null,
    logical_date date        not null,
    checked_at   timestamptz not null default now(),
    source       text        not null,
    object       text        not null,  -- eurostat: the dataset code; surveys: <cluster>/<instrument>
    grade        text        not null check (grade in ('ok', 'warn', 'stale')),
    age          numeric,                -- since the last successful check (h) or the latest loaded file (d)
    unit         text        not null check (unit in ('h', 'd')),
    limit_value  numeric     not null,  -- error_after_hours (eurostat) or max_age_days (surveys)
    message      text        not null default '',
    primary key (run_id, source, object)
);
comment on table audit.freshness_checks is
    'Freshness of every source object as each nightly run found it (ingest/status/freshness.py): ok, warn, stale.';
grant select, insert, update, delete on audit.freshness_checks to loader;
