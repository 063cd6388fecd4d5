-- 0013: the dashboard's origin tells the SDMX providers' files from Eurostat's (issue #21.4): SDMX datasets load under
-- the statistics source (raw.eurostat_observations) but are not Eurostat's, so audit.dashboard_provenance gains a
-- last column `sdmx` (a batch extracted from an SDMX provider: its reading in audit.batches.meta). Same privileges
-- (bi_reader reads the view, not the tables). Idempotent. 0010 stays as it is: applied again, its definition of this
-- view would drop the column, which Postgres refuses; views change in a new migration.

create or replace view audit.dashboard_provenance as
select b.source, s.sha256,
       count(distinct f.fetch_id) as fetches,
       coalesce(bool_or(f.url ~* '^https?://(127\.[0-9.]+|localhost|\[::1\])([:/?#]|$)'), false) as loopback,
       coalesce(bool_or(f.url ~* '^https?://' and f.url !~* '^https?://(127\.[0-9.]+|localhost|\[::1\])([:/?#]|$)'),
                false) as web,
       coalesce(bool_or(f.url !~* '^https?://'), false) as inbox,
       coalesce(bool_or(replace(f.url, '\', '/') like '%/ingest/samples/%'), false) as bundled_path,
       array_remove(array_agg(distinct t.sha256), null) as toc_sha256,
       coalesce(bool_or(b.meta ? 'sdmx'), false) as sdmx
from audit.batches b
cross join lateral unnest(b.sha256) as s(sha256)
left join audit.fetches f on f.source = b.source and f.sha256 = s.sha256
left join audit.fetches t on t.run_id = f.run_id and t.source = 'eurostat' and t.object = 'toc'
    and b.source = 'eurostat' and t.http_status = 200
    and substring(t.url from '^[a-zA-Z][a-zA-Z0-9+.-]*://[^/?#]+')
        = substring(f.url from '^[a-zA-Z][a-zA-Z0-9+.-]*://[^/?#]+')  -- the same server
where b.status = 'loaded'
group by b.source, s.sha256;
