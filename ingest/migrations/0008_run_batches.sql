-- 0008: per-run batch bookkeeping. Idempotent.
-- audit.batches is keyed by content (batch_id = source:object:sha) and keeps the LATEST outcome of each batch
-- (what the dashboard, `ss4gl quarantine`, the surveys' "already processed" set, dbt and the nightly reconciliation
-- read). Two runs handling the same content at the same time (a nightly beside a backfill, two backfill dates)
-- each need their own copy of a batch's status, reason, row counts and meta (partition, tables) to hand over
-- between their tasks: that is audit.run_batches, one row per (run, batch), written by record_batch in the same
-- transaction as audit.batches (ingest/tasks/common.py). Tasks find "their" batches here; run summaries count here.
create table if not exists audit.run_batches (
    run_id        text not null,
    batch_id      text not null,
    source        text not null,
    object        text not null,
    sha256        text[] not null,
    logical_date  date,
    status        text not null
        check (status in ('received', 'validated', 'quarantined', 'released', 'loaded', 'failed')),
    reason        text,
    rows_parsed   bigint,
    rows_loaded   bigint,
    meta          jsonb not null default '{}',
    created_at    timestamptz not null default now(),
    updated_at    timestamptz not null default now(),
    primary key (run_id, batch_id)
);
create index if not exists run_batches_batch on audit.run_batches (batch_id);
create index if not exists run_batches_run_source_status on audit.run_batches (run_id, source, status);

-- Runs recorded before this migration: their batches as audit.batches last saw them (the run of each batch's
-- latest outcome), so summaries and reconciliation of those runs read the same as before.
insert into audit.run_batches (run_id, batch_id, source, object, sha256, logical_date, status, reason, rows_parsed,
                               rows_loaded, meta, created_at, updated_at)
select run_id, batch_id, source, object, sha256, logical_date, status, reason, rows_parsed, rows_loaded, meta,
       created_at, updated_at
from audit.batches where run_id is not null
on conflict (run_id, batch_id) do nothing;

-- Run bookkeeping is the loader's (0004 grants audit tables existing then; 0007 revoked DDL).
grant select, insert, update, delete on audit.run_batches to loader;
