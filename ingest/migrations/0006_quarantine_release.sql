-- 0006: an operator can release a quarantined batch (`ss4gl quarantine release`): status 'released' means
-- "try this content again on the next run" (a quarantined batch is otherwise never retried).
alter table audit.batches drop constraint if exists batches_status_check;
alter table audit.batches add constraint batches_status_check
    check (status in ('received', 'validated', 'quarantined', 'released', 'loaded', 'failed'));
create index if not exists batches_source_object on audit.batches (source, object, updated_at);
-- Arrival order of a run's batches (run_batches) and the nightly reconciliation look receipts up by batch.
create index if not exists batch_receipts_batch on audit.batch_receipts (batch_id, logical_date);
