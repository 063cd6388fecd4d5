-- 0010: what the dashboard says about what it shows (issue #18.6), as more audit.dashboard_* views for bi_reader
-- (0007): the origin of the loaded data, the latest nightly run and its state, open quarantines by problem code and
-- freshness per source. Codes, counts, hashes and dates only: never a message, a row, a value or a URL. bi_reader
-- still reads no audit or raw table itself (a view runs with its owner's privileges). Idempotent.

-- The latest nightly run (backfills rebuild history, not the marts the dashboard shows) and, when newer, a nightly
-- run with audit records but no summary yet: running now (the dashboard is built inside the run, before its
-- summary is written) or stopped before its publish task.
create or replace view audit.dashboard_run as
with nightly as (
    select s.run_id, s.logical_date, s.finished_at, s.summary,
           case when jsonb_typeof(s.summary->'quarantined') = 'array'
                then jsonb_array_length(s.summary->'quarantined') else 0 end as quarantined,
           case when jsonb_typeof(s.summary->'failed_tasks') = 'array'
                then jsonb_array_length(s.summary->'failed_tasks') else 0 end as failed_tasks,
           case when jsonb_typeof(s.summary->'missing_marts') = 'array'
                then jsonb_array_length(s.summary->'missing_marts') else 0 end as missing_marts
    from audit.run_summaries s
    where coalesce(s.summary->>'marts_schema', 'marts') <> 'history' and s.run_id not like 'backfill\_\_%'
    order by s.finished_at desc
    limit 1
), unfinished as (
    select a.run_id, max(a.logical_date) as logical_date, min(a.first_at) as started_at, max(a.last_at) as last_at,
           count(distinct a.batch_id) filter (where a.status = 'quarantined') as quarantined
    from (
        select run_id, logical_date, checked_at as first_at, checked_at as last_at, decision = 'replay' as replay,
               null::text as batch_id, null::text as status
        from audit.dataset_checks
        union all
        select run_id, logical_date, created_at, updated_at, false, batch_id, status from audit.run_batches
    ) a
    where a.run_id not like 'backfill\_\_%'
      and not exists (select 1 from audit.run_summaries s where s.run_id = a.run_id)
    group by a.run_id
    having not bool_or(a.replay)
    order by max(a.last_at) desc
    limit 1
)
select 'finished'::text as kind, n.run_id, n.logical_date, null::timestamptz as started_at, n.finished_at,
       coalesce(n.summary->>'outcome',
                case when n.failed_tasks > 0 or n.missing_marts > 0 then 'failed'
                     when n.quarantined > 0 then 'completed_with_quarantine' else 'success' end) as outcome,
       n.quarantined::bigint as quarantined, n.failed_tasks::bigint as failed_tasks
from nightly n
union all
select 'unfinished', u.run_id, u.logical_date, u.started_at, null, 'unfinished', u.quarantined, 0
from unfinished u
where u.last_at > coalesce((select finished_at from nightly), '-infinity'::timestamptz);

-- Where the loaded data came from, per loaded batch file: how its bytes were received (audit.fetches), by kind of
-- address only. `loopback`: over HTTP from this machine (the local replay of the bundled Eurostat samples that
-- offline mode serves); `web`: over HTTP(S) from elsewhere; `inbox`: a file of the survey inbox. `bundled_path`:
-- read from the package's own samples folder (ingest/samples/). `toc_sha256`: the Eurostat table(s) of contents
-- fetched in the same run from the same server (a replay serves the bundled toc.txt byte for byte, wherever it
-- runs). The dashboard compares the hashes with the bundled sample files. Every batch ever loaded counts: history
-- (snapshots, revisions) keeps what it brought.
create or replace view audit.dashboard_provenance as
select b.source, s.sha256,
       count(distinct f.fetch_id) as fetches,
       coalesce(bool_or(f.url ~* '^https?://(127\.[0-9.]+|localhost|\[::1\])([:/?#]|$)'), false) as loopback,
       coalesce(bool_or(f.url ~* '^https?://' and f.url !~* '^https?://(127\.[0-9.]+|localhost|\[::1\])([:/?#]|$)'),
                false) as web,
       coalesce(bool_or(f.url !~* '^https?://'), false) as inbox,
       coalesce(bool_or(replace(f.url, '\', '/') like '%/ingest/samples/%'), false) as bundled_path,
       array_remove(array_agg(distinct t.sha256), null) as toc_sha256
from audit.batches b
cross join lateral unnest(b.sha256) as s(sha256)
left join audit.fetches f on f.source = b.source and f.sha256 = s.sha256
left join audit.fetches t on t.run_id = f.run_id and t.source = 'eurostat' and t.object = 'toc'
    and b.source = 'eurostat' and t.http_status = 200
    and substring(t.url from '^[a-zA-Z][a-zA-Z0-9+.-]*://[^/?#]+')
        = substring(f.url from '^[a-zA-Z][a-zA-Z0-9+.-]*://[^/?#]+')  -- the same server
where b.status = 'loaded'
group by b.source, s.sha256;

-- Open quarantines (not released) by problem code: how many batches, how many problems. Warnings never
-- quarantine a batch; a batch without an error record counts as `unspecified`.
create or replace view audit.dashboard_quarantine_codes as
select b.source, coalesce(q.code, 'unspecified') as code, count(distinct b.batch_id) as batches,
       count(q.code) as problems, max(b.updated_at) as latest
from audit.batches b
left join audit.quarantine q on q.batch_id = b.batch_id and q.severity in ('error', 'critical')
where b.status = 'quarantined'
group by b.source, coalesce(q.code, 'unspecified');

-- Per Eurostat dataset: the last receipt (a download; replays record none), the last check and its decision
-- (a backfill's replays are no check of Eurostat), Eurostat's table-of-contents `last update` and the `updated`
-- stamp of the loaded version (raw).
create or replace view audit.dashboard_eurostat_freshness as
select d.dataset,
       (select max(r.received_at) from audit.batch_receipts r
         where r.source = 'eurostat' and r.object = d.dataset) as last_receipt,
       c.checked_at as last_check, c.decision as last_decision,
       (select c2.toc_last_update from audit.dataset_checks c2
         where c2.source = 'eurostat' and c2.object = d.dataset and c2.decision <> 'replay'
           and c2.toc_last_update is not null
         order by c2.checked_at desc limit 1) as toc_last_update,
       st.loaded_at as last_loaded,
       (select o.source_updated_at from raw.eurostat_observations o where o.dataset = d.dataset limit 1)
           as source_updated_at
from (
    select object as dataset from audit.dataset_checks where source = 'eurostat'
    union select object from audit.batch_receipts where source = 'eurostat'
    union select object from audit.source_state where source = 'eurostat'
) d
left join lateral (
    select checked_at, decision from audit.dataset_checks x
    where x.source = 'eurostat' and x.object = d.dataset and x.decision <> 'replay'
    order by x.checked_at desc limit 1
) c on true
left join audit.source_state st on st.source = 'eurostat' and st.object = d.dataset;

-- Per cluster and survey instrument (inbox folders <cluster>/<instrument>/<file>): files received, the last
-- receipt and its batch's status, the last load. No file name.
create or replace view audit.dashboard_survey_freshness as
select split_part(r.object, '/', 1) as cluster_id, split_part(r.object, '/', 2) as instrument,
       count(distinct r.batch_id) as files,
       max(r.received_at) as last_receipt,
       max(r.logical_date) as last_logical_date,
       (array_agg(b.status order by r.received_at desc, r.receipt_id desc))[1] as last_status,
       max(b.updated_at) filter (where b.status = 'loaded') as last_loaded
from audit.batch_receipts r
left join audit.batches b on b.batch_id = r.batch_id
where r.source = 'surveys'
group by 1, 2;

grant select on audit.dashboard_run, audit.dashboard_provenance, audit.dashboard_quarantine_codes,
    audit.dashboard_eurostat_freshness, audit.dashboard_survey_freshness to bi_reader;
