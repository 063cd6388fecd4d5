-- 0005: append-only receipts: which batch (content) was received for which logical date.
-- The basis of backfills: a backfill for date D replays, per object, the latest receipt on or before D.
create table if not exists audit.batch_receipts (
    receipt_id    bigserial primary key,
    batch_id      text not null,
    source        text not null,
    object        text not null,
    sha256        text[] not null,
    meta          jsonb not null default '{}',
    run_id        text,
    logical_date  date not null,
    received_at   timestamptz not null default now()
);
create index if not exists batch_receipts_lookup on audit.batch_receipts (source, object, logical_date);

-- Content that already passed a suite: the same bytes under the same suite and context need no new
-- validation (nightly reruns, backfill replays). Failures are never cached.
create table if not exists audit.validation_cache (
    batch_id      text not null,
    suite         text not null,
    suite_sha256  text not null,
    context_sha256 text not null,
    validated_at  timestamptz not null default now(),
    primary key (batch_id, suite, suite_sha256, context_sha256)
);
