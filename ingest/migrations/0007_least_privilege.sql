-- 0007: least privilege per stage. The configured account (a superuser on the embedded server) runs migrations
-- only; every stage acts as its role (ingest.warehouse.connect(role=...), dbt's profile `role`):
--   loader       extract, validate, load, run bookkeeping: reads and writes raw and audit, no DDL anywhere
--   transformer  dbt: owns the schemas it builds (staging, intermediate, marts, reference, snapshots), reads raw
--                and audit.batches, writes nothing else
--   bi_reader    the dashboard and BI tools: marts, reference.clusters and the audit.dashboard_* views below
-- Idempotent.

-- A non-superuser administrator needs membership to act as a stage role (a superuser has it implicitly).
do $$
declare r text;
begin
    foreach r in array array['loader', 'transformer', 'bi_reader'] loop
        if not exists (select 1 from pg_roles where rolname = current_user and rolsuper) then
            execute format('grant %I to %I', r, current_user);
        end if;
    end loop;
end $$;

-- transformer owns what dbt builds, including relations built before this migration by the administrator.
do $$
declare s text; r record;
begin
    foreach s in array array['staging', 'intermediate', 'marts', 'reference', 'snapshots'] loop
        execute format('create schema if not exists %I', s);
        execute format('alter schema %I owner to transformer', s);
        for r in select c.relname, c.relkind from pg_class c join pg_namespace n on n.oid = c.relnamespace
                 where n.nspname = s and c.relkind in ('r', 'p', 'v', 'm') loop
            execute format('alter %s %I.%I owner to transformer',
                           case r.relkind when 'v' then 'view' when 'm' then 'materialized view' else 'table' end,
                           s, r.relname);
        end loop;
    end loop;
end $$;

grant select on all tables in schema raw to transformer;
grant select on audit.batch_receipts to transformer;  -- arrival order of re-submitted survey files
alter default privileges in schema raw grant select on tables to transformer;
revoke create on schema raw, audit from loader, transformer, bi_reader;

-- What BI tools may read of what dbt builds (dbt's grants config does the same per model on every build).
grant usage on schema marts, reference to bi_reader;
grant select on all tables in schema marts to bi_reader;
alter default privileges for role transformer in schema marts grant select on tables to bi_reader;

-- The dashboard's view of the audit trail: run, source freshness, quarantined batches by problem code and count.
-- Never a message, row or value (those quote the files).
create or replace view audit.dashboard_last_run as
    select run_id, logical_date, finished_at from audit.run_summaries order by finished_at desc limit 1;

create or replace view audit.dashboard_sources as
    select source, count(*) as objects, max(loaded_at) as last_loaded, max(source_updated_at) as source_updated
    from audit.source_state
    group by source;

create or replace view audit.dashboard_quarantined as
    select b.source, b.object, b.status, p.problems, p.codes, b.updated_at
    from audit.batches b
    left join lateral (
        select count(*) filter (where q.severity <> 'warning') as problems,
               string_agg(distinct q.code, ', ' order by q.code) filter (where q.severity <> 'warning') as codes
        from audit.quarantine q where q.batch_id = b.batch_id
    ) p on true
    where b.status in ('quarantined', 'failed')
    order by b.updated_at desc
    limit 20;

grant usage on schema audit to bi_reader;
grant select on audit.dashboard_last_run, audit.dashboard_sources, audit.dashboard_quarantined to bi_reader;
