-- 0004: access roles, created idempotently (roles are cluster-wide; concurrent creation is tolerated).
--   loader      writes raw and audit (the ingest tasks)
--   transformer builds dbt schemas (reads raw, writes staging/intermediate/marts/reference/snapshots)
--   bi_reader   reads marts only (BI tools, the dashboard); login is enabled by `ss4gl warehouse bi-reader`
do $$
declare r text;
begin
    foreach r in array array['loader', 'transformer', 'bi_reader'] loop
        begin
            execute format('create role %I nologin', r);
        exception when duplicate_object or unique_violation then null;
        end;
    end loop;
end $$;

create schema if not exists staging;
create schema if not exists intermediate;
create schema if not exists marts;
create schema if not exists reference;
create schema if not exists snapshots;

grant usage on schema raw, audit to loader;
grant select, insert, update, delete on all tables in schema raw, audit to loader;
grant usage on all sequences in schema audit to loader;
alter default privileges in schema raw, audit grant select, insert, update, delete on tables to loader;
alter default privileges in schema audit grant usage on sequences to loader;

grant usage on schema raw, audit to transformer;
grant select on all tables in schema raw to transformer;
grant select on audit.batches to transformer;
grant usage, create on schema staging, intermediate, marts, reference, snapshots to transformer;

-- bi_reader: marts only. Nothing in raw, audit, staging, intermediate, reference or snapshots.
revoke all on schema raw, audit from bi_reader;
grant usage on schema marts to bi_reader;
grant select on all tables in schema marts to bi_reader;
alter default privileges in schema marts grant select on tables to bi_reader;
