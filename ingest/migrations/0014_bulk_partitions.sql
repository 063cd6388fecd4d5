-- 0014: write-audit-publish for big Eurostat batches (issue #19).
--
-- raw.eurostat_observations becomes a table partitioned by dataset. Every row loaded so far stays where it is, in
-- the DEFAULT partition raw.eurostat_observations_default (the former table, attached as it is: no row moves), and
-- small batches keep loading through the parent (delete + COPY, ingest.load). A big batch (a bulk dataset) is
-- written to a table of its own in raw_staging, validated there by GX's SQL engine, and published by
-- raw.publish_partition: its dataset's partition swapped for the staged table in one transaction.
-- Readers (dbt, the dashboard's views, BI tools) read the parent and never see the difference. Idempotent.

create schema if not exists raw_staging;
grant usage, create on schema raw_staging to loader;
revoke all on schema raw_staging from transformer, bi_reader;

do $$
declare
    v record;
begin
    if (select c.relkind from pg_class c where c.oid = 'raw.eurostat_observations'::regclass) <> 'r' then
        return;  -- partitioned already
    end if;
    alter table raw.eurostat_observations rename to eurostat_observations_default;
    alter index raw.eurostat_observations_pkey rename to eurostat_observations_default_pkey;
    create table raw.eurostat_observations (like raw.eurostat_observations_default including defaults)
        partition by list (dataset);
    alter table raw.eurostat_observations add primary key (dataset, series_key, geo, time);
    alter table raw.eurostat_observations attach partition raw.eurostat_observations_default default;
    grant select, insert, update, delete on raw.eurostat_observations to loader;
    grant select on raw.eurostat_observations to transformer;
    -- Views follow a renamed table: point every view that read the former table back at the parent.
    for v in
        select distinct dv.oid::regclass as view, dv.relkind
        from pg_depend d
        join pg_rewrite r on r.oid = d.objid
        join pg_class dv on dv.oid = r.ev_class
        where d.refobjid = 'raw.eurostat_observations_default'::regclass and dv.oid <> d.refobjid
    loop
        execute format(
            'create or replace view %s as %s', v.view,
            replace(pg_get_viewdef(v.view), 'raw.eurostat_observations_default', 'raw.eurostat_observations')
        );
    end loop;
end $$;

-- Publish a validated staged table as the partition of one list value (a dataset) of a partitioned raw table, in
-- the caller's transaction: the value's rows leave the default partition, its former partition is dropped, the
-- staged table is attached in its place (its primary key built then, unless a unique index on the key is there).
-- The loader may not alter raw tables (no DDL there); this function, owned by the administrator, does exactly this
-- and nothing else, and takes only a plain table the loader made: no trigger, rule, policy, grant, default, extended
-- statistics, inheritance or index but the key's, logged. It takes the same per-partition lock as
-- ingest.load.partition_lock, then the parent's strongest lock (two publishes never wait on each other's upgrade).
create or replace function raw.publish_partition(p_table text, p_value text, p_staged text)
returns void
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    parent regclass;
    staged regclass;
    key_col text;
    part_name text;
    old regclass;
    not_null text;
    key_index name;
    default_part regclass;
begin
    parent := to_regclass(format('raw.%I', p_table));
    staged := to_regclass(format('raw_staging.%I', p_staged));
    if parent is null or staged is null then
        raise exception 'publish_partition: no table raw.% or raw_staging.%', p_table, p_staged;
    end if;
    if (select c.relkind from pg_class c where c.oid = parent) <> 'p' then
        raise exception 'publish_partition: raw.% is not partitioned', p_table;
    end if;
    select a.attname into key_col
    from pg_partitioned_table pt join pg_attribute a on a.attrelid = pt.partrelid and a.attnum = pt.partattrs[0]
    where pt.partrelid = parent and pt.partstrat = 'l' and pt.partnatts = 1;
    if key_col is null then
        raise exception 'publish_partition: raw.% is not list-partitioned by one column', p_table;
    end if;
    -- Locked first: nothing can be added to the staged table between these checks and the attach.
    execute format('lock table %s in access exclusive mode', staged);
    if exists (select 1 from pg_class c where c.oid = staged and (c.relkind <> 'r' or c.relpersistence <> 'p'
                   or c.relacl is not null or c.relhastriggers or c.relhasrules or c.relrowsecurity
                   or pg_get_userbyid(c.relowner) <> 'loader'))
       or exists (select 1 from pg_attribute where attrelid = staged and attacl is not null)
       or exists (select 1 from pg_inherits where inhrelid = staged or inhparent = staged)
       or exists (select 1 from pg_attrdef where adrelid = staged)
       or exists (select 1 from pg_statistic_ext where stxrelid = staged)
       or exists (select 1 from pg_policy where polrelid = staged)
       or exists (select 1 from pg_constraint where conrelid = staged)
       or exists (select 1 from pg_index where indrelid = staged and (not indisunique or indexprs is not null
                  or indpred is not null))
       or (select count(*) from pg_index where indrelid = staged) > 1 then
        raise exception 'publish_partition: raw_staging.% is not a plain table of the loader', p_staged;
    end if;
    perform pg_advisory_xact_lock(hashtextextended(format('%s|%s=%s', p_table, key_col, p_value), 0));
    execute format('lock table %s in access exclusive mode', parent);
    -- The parent's NOT NULL columns and the partition's bound, checked in one pass over the staged rows (they were
    -- validated; this is the warehouse's own guarantee): the attach below then needs no scan of its own.
    select string_agg(format('alter column %I set not null', a.attname), ', ') into not_null
    from pg_attribute a where a.attrelid = parent and a.attnum > 0 and not a.attisdropped and a.attnotnull;
    execute format('alter table %s %s add constraint %I check (%I is not null and %I = %L)', staged,
                   coalesce(not_null || ', ', ''), p_staged || '_bound', key_col, key_col, p_value);
    -- A unique index on the parent's primary key columns, built beside the validation (ingest.tasks.gate), becomes
    -- the staged table's primary key: the attach then takes it instead of building one.
    select c.relname into key_index
    from pg_index i join pg_class c on c.oid = i.indexrelid
    where i.indrelid = staged and i.indisunique and i.indisvalid and not i.indisprimary and i.indpred is null
      and i.indexprs is null
      and (select array_agg(a.attname::text order by k.n) from unnest(i.indkey) with ordinality k(num, n)
           join pg_attribute a on a.attrelid = staged and a.attnum = k.num)
        = (select array_agg(a.attname::text order by k.n) from pg_index p, unnest(p.indkey) with ordinality k(num, n)
           join pg_attribute a on a.attrelid = parent and a.attnum = k.num
           where p.indrelid = parent and p.indisprimary)
    limit 1;
    if key_index is not null then
        execute format('alter table %s add constraint %I primary key using index %I', staged, p_staged || '_pkey',
                       key_index);
    elsif exists (select 1 from pg_index where indrelid = staged) then
        raise exception 'publish_partition: raw_staging.% has an index other than the key''s', p_staged;
    end if;
    -- Rows of this value loaded through the parent before (the Statistics API path) leave the default partition.
    select pt.partdefid::regclass into default_part from pg_partitioned_table pt
    where pt.partrelid = parent and pt.partdefid <> 0;
    if default_part is not null then
        execute format('delete from %s where %I = %L', default_part, key_col, p_value);
    end if;
    part_name := left(p_table, 30) || '_p_' || left(md5(p_value), 12);
    select i.inhrelid::regclass into old
    from pg_inherits i join pg_class c on c.oid = i.inhrelid
    where i.inhparent = parent and pg_get_expr(c.relpartbound, c.oid) = format('FOR VALUES IN (%L)', p_value);
    if old is not null then
        execute format('alter table %s detach partition %s', parent, old);
        execute format('drop table %s', old);
    end if;
    execute format('alter table %s set schema raw', staged);
    execute format('alter table raw.%I rename to %I', p_staged, part_name);
    execute format('alter table raw.%I owner to %I', part_name,
                   (select r.rolname from pg_class c join pg_roles r on r.oid = c.relowner where c.oid = parent));
    execute format('alter table %s attach partition raw.%I for values in (%L)', parent, part_name, p_value);
end $$;

revoke all on function raw.publish_partition(text, text, text) from public;
grant execute on function raw.publish_partition(text, text, text) to loader;
