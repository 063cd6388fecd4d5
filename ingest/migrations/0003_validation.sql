-- 0003: results of the Great Expectations gate (ingest.validation.record), for BI. Idempotent.
create schema if not exists audit;

-- One row per (suite, batch) validation.
create table if not exists audit.validation_runs (
    validation_id    uuid        primary key,
    run_id           text,
    batch_id         text        not null,
    suite            text        not null,
    dataset          text,                       -- Eurostat dataset code (null for surveys)
    logical_date     date,
    success          boolean     not null,       -- no critical expectation failed
    evaluated        int         not null,
    failed_critical  int         not null,
    failed_warning   int         not null,
    row_count        bigint,
    skipped          jsonb       not null default '[]'::jsonb,  -- suite entries that did not apply
    started_at       timestamptz not null,
    finished_at      timestamptz not null,
    recorded_at      timestamptz not null default now()
);
create index if not exists validation_runs_batch on audit.validation_runs (batch_id);
create index if not exists validation_runs_run on audit.validation_runs (run_id);
create index if not exists validation_runs_date on audit.validation_runs (logical_date, suite);

-- One row per expectation evaluated in a validation.
create table if not exists audit.validation_results (
    validation_id       uuid        not null references audit.validation_runs (validation_id) on delete cascade,
    ordinal             int         not null,
    batch_id            text        not null,
    suite               text        not null,
    expectation         text        not null,   -- rule id of the suite file, e.g. key_unique
    expectation_type    text,                   -- GX type, e.g. expect_compound_columns_to_be_unique
    column_name         text,
    severity            text        not null check (severity in ('critical', 'warning')),
    success             boolean     not null,
    element_count       bigint,
    unexpected_count    bigint,
    unexpected_percent  double precision,
    sample_values       jsonb       not null default '[]'::jsonb,   -- at most 5, personal data redacted
    details             jsonb       not null default '{}'::jsonb,   -- expected, condition, observed, exception
    run_id              text,
    logical_date        date,
    primary key (validation_id, ordinal)
);
create index if not exists validation_results_batch on audit.validation_results (batch_id);
create index if not exists validation_results_failed on audit.validation_results (suite, expectation)
    where not success;
