-- 0009: backfills never touch the current marts. A backfill of date D builds the dbt project as of D into the
-- asof_* schemas (dbt var schema_prefix) and publishes its marts into history.<mart>, keyed by logical_date, where
-- BI tools read them. Owned by the transformer (dbt and the history publication run as it). Idempotent.
do $$
declare s text;
begin
    foreach s in array array['asof_staging', 'asof_intermediate', 'asof_marts', 'asof_reference', 'asof_snapshots',
                             'history'] loop
        execute format('create schema if not exists %I', s);
        execute format('alter schema %I owner to transformer', s);
    end loop;
end $$;

grant usage on schema history to bi_reader;
grant select on all tables in schema history to bi_reader;
alter default privileges for role transformer in schema history grant select on tables to bi_reader;
