"""Bulk datasets (catalogue ``bulk: true``, issue #19): Eurostat's bulk SDMX-TSV file over real loopback HTTP,
streamed to the archive, decoded piece by piece into a staging table of a real Postgres, validated there by GX's SQL
engine, published by a partition swap: the same rows as the Statistics API path, and a bad file quarantined in one
line with nothing of it published."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest
import yaml

from ingest.config import CATALOGUE_PATH, SAMPLES_DIR
from ingest.eurostat.replay import ReplayServer
from tests.conftest import query
from tests.integration._support import isolated_stage

CODE = "nama_10r_2gdp"
ROWS = (
    "select series_key, dims::text, geo, time, value, obs_status, conf_status from raw.eurostat_observations"
    " where dataset = %s order by series_key, geo, time"
)


def _catalogue(tmp_path, bulk: bool, **limits: int):
    cat = yaml.safe_load(CATALOGUE_PATH.read_text(encoding="utf-8"))
    for entry in cat["eurostat_datasets"]:
        if entry["code"] == CODE:
            entry["bulk"] = bulk
    cat["sources"]["eurostat"].update(limits)
    path = tmp_path / f"catalogue-{'bulk' if bulk else 'api'}-{len(limits)}.yml"
    path.write_text(yaml.safe_dump(cat, sort_keys=False), encoding="utf-8")
    return str(path)


def _night(monkeypatch, catalogue: str, run_id: str) -> dict:
    from ingest.tasks import eurostat as stats
    from ingest.tasks import gate
    from ingest.tasks.common import RunContext

    monkeypatch.setenv("SS4GL_CATALOGUE", catalogue)
    ctx = RunContext(run_id=run_id, logical_date="2026-11-30")
    got = stats.extract(ctx, CODE)
    valid = gate.validate(ctx, stats.SOURCE, stats.prepare)
    loaded = gate.load(ctx, stats.SOURCE, after_load=stats.remember_loaded)
    return {"extract": got, "validate": valid, "load": loaded}


def test_a_bulk_dataset_loads_the_rows_of_the_statistics_api_through_a_staged_table(
    warehouse_url, tmp_path, monkeypatch
):
    import ingest.eurostat.bulk as bulk

    monkeypatch.setattr(bulk, "BLOCK_BYTES", 2048)  # many pieces: rows cut between series must all arrive
    with (
        ReplayServer(SAMPLES_DIR / "eurostat") as server,
        isolated_stage(
            warehouse_url, tmp_path, EUROSTAT_BASE_URL=server.base_url, EUROSTAT_BACKOFF_SCALE="0.001"
        ) as st,
    ):
        api = _night(monkeypatch, _catalogue(tmp_path, bulk=False), "api_night")
        from_api = query(st.url, ROWS, CODE)
        bulky = _night(monkeypatch, _catalogue(tmp_path, bulk=True), "bulk_night")
        from_bulk = query(st.url, ROWS, CODE)
        calls = [c.path for c in server.calls("/sdmx/2.1/data/")]
        partitions = query(
            st.url,
            "select tableoid::regclass::text, count(*) from raw.eurostat_observations where dataset = %s group by 1",
            CODE,
        )
        audit = query(
            st.url,
            "select b.meta ? 'bulk', b.meta->'staged'->>'schema', r.row_count from audit.batches b"
            " join audit.validation_runs r on r.batch_id = b.batch_id where b.batch_id = %s",
            bulky["extract"]["batch_id"],
        )
        staged_left = query(st.url, "select count(*) from pg_tables where schemaname = 'raw_staging'")
        keys = query(  # the partition's primary key is the index built beside the validation, not a second one
            st.url,
            "select c.relname from pg_index i join pg_class c on c.oid = i.indexrelid where i.indrelid = %s::regclass",
            partitions[0][0],
        )
        # a second night with the same file: raw holds it already, nothing staged, nothing changed
        again = _night(monkeypatch, _catalogue(tmp_path, bulk=True), "bulk_again")
        assert query(st.url, ROWS, CODE) == from_bulk
    assert api["load"]["rows"] == len(from_api) > 1000
    assert calls == [f"/sdmx/2.1/data/{CODE}"]
    assert bulky["validate"]["validated"] == 1 and bulky["validate"]["quarantined"] == 0
    assert from_bulk == from_api
    ((partition, rows),) = partitions
    assert partition.startswith("raw.eurostat_observations_p_") and rows == len(from_api)
    assert audit == [(True, "raw_staging", len(from_api))]
    assert staged_left == [(0,)]
    assert len(keys) == 1 and keys[0][0].endswith("_pkey") and not keys[0][0].startswith("eurostat_observations_p_")
    assert again["load"]["batches"] == 1 and again["validate"]["quarantined"] == 0


def test_a_bad_bulk_file_is_quarantined_in_one_line_and_publishes_nothing(warehouse_url, tmp_path, monkeypatch):
    """A duplicate series (the key the suite requires unique) fails the GX validation run in the warehouse: the
    batch is quarantined with the expectation, its staging table dropped, raw keeps what it had."""
    from ingest.eurostat.replay import jsonstat_to_tsv

    good = jsonstat_to_tsv(__import__("orjson").loads((SAMPLES_DIR / "eurostat" / f"{CODE}.json").read_bytes()))
    lines = good.splitlines(keepends=True)
    bad = b"".join([*lines, lines[1]])  # the first series twice
    with (
        ReplayServer(SAMPLES_DIR / "eurostat") as server,
        isolated_stage(
            warehouse_url, tmp_path, EUROSTAT_BASE_URL=server.base_url, EUROSTAT_BACKOFF_SCALE="0.001"
        ) as st,
    ):
        server.script(f"/sdmx/2.1/data/{CODE}", [(200, "application/octet-stream", gzip.compress(bad, mtime=0))])
        out = _night(monkeypatch, _catalogue(tmp_path, bulk=True), "bad_bulk")
        reasons = query(
            st.url, "select status, reason from audit.batches where batch_id = %s", out["extract"]["batch_id"]
        )
        rows = query(st.url, "select count(*) from raw.eurostat_observations where dataset = %s", CODE)
        staged_left = query(st.url, "select count(*) from pg_tables where schemaname = 'raw_staging'")
    assert out["validate"]["quarantined"] == 1
    ((status, reason),) = reasons
    assert status == "quarantined" and "key_unique" in reason and "\n" not in reason
    assert rows == [(0,)] and staged_left == [(0,)]


@pytest.mark.parametrize(
    ("body", "kind"),
    [
        (b'{"error":[{"status":404,"id":100,"label":"Dataset not found"}]}', "Eurostat error|not SDMX TSV"),
        (b"<html><title>Maintenance</title></html>", "not SDMX TSV"),
    ],
)
def test_a_bulk_answer_that_is_not_tsv_is_quarantined_at_extract(warehouse_url, tmp_path, monkeypatch, body, kind):
    from ingest.tasks import eurostat as stats
    from ingest.tasks.common import RunContext

    with (
        ReplayServer(SAMPLES_DIR / "eurostat") as server,
        isolated_stage(
            warehouse_url, tmp_path, EUROSTAT_BASE_URL=server.base_url, EUROSTAT_BACKOFF_SCALE="0.001"
        ) as st,
    ):
        server.script(f"/sdmx/2.1/data/{CODE}", [(200, "application/octet-stream", body)])
        monkeypatch.setenv("SS4GL_CATALOGUE", _catalogue(tmp_path, bulk=True))
        got = stats.extract(RunContext(run_id="not_tsv", logical_date="2026-11-30"), CODE)
        ((status, reason),) = query(
            st.url, "select status, reason from audit.batches where batch_id = %s", got["batch_id"]
        )
        fetched = query(st.url, "select size_bytes from audit.fetches where object = %s", CODE)
    import re

    assert status == "quarantined" and re.search(kind, reason) and fetched == [(len(body),)]


def test_a_dataset_too_big_for_the_statistics_api_comes_from_the_bulk_file(warehouse_url, tmp_path, monkeypatch):
    """EXTRACTION_TOO_BIG (HTTP 413) for a dataset of every region (no geo list to split): the bulk file instead."""
    with (
        ReplayServer(SAMPLES_DIR / "eurostat", max_cells=100) as server,
        isolated_stage(
            warehouse_url, tmp_path, EUROSTAT_BASE_URL=server.base_url, EUROSTAT_BACKOFF_SCALE="0.001"
        ) as st,
    ):
        out = _night(monkeypatch, _catalogue(tmp_path, bulk=False), "too_big")
        asked = [c.path for c in server.calls("/")]
        rows = query(st.url, "select count(*) from raw.eurostat_observations where dataset = %s", CODE)
        meta = query(st.url, "select meta ? 'bulk' from audit.batches where batch_id = %s", out["extract"]["batch_id"])
    assert asked == [f"/statistics/1.0/data/{CODE}", f"/sdmx/2.1/data/{CODE}"]
    assert out["validate"]["quarantined"] == 0 and rows[0][0] == out["load"]["rows"] > 1000 and meta == [(True,)]


def test_a_bulk_file_past_its_decompression_bound_stops_mid_copy_and_is_quarantined(
    warehouse_url, tmp_path, monkeypatch
):
    """Every input is bounded: a bulk file expanding past max_bulk_decompressed_bytes stops while it is being
    copied (one line, code too_large), and its staging table goes with the rolled-back transaction."""
    import ingest.eurostat.bulk as bulk

    monkeypatch.setattr(bulk, "BLOCK_BYTES", 4096)
    with (
        ReplayServer(SAMPLES_DIR / "eurostat") as server,
        isolated_stage(
            warehouse_url, tmp_path, EUROSTAT_BASE_URL=server.base_url, EUROSTAT_BACKOFF_SCALE="0.001"
        ) as st,
    ):
        out = _night(monkeypatch, _catalogue(tmp_path, bulk=True, max_bulk_decompressed_bytes=60_000), "bounded")
        ((status, reason),) = query(
            st.url, "select status, reason from audit.batches where batch_id = %s", out["extract"]["batch_id"]
        )
        codes = query(st.url, "select code from audit.quarantine where batch_id = %s", out["extract"]["batch_id"])
        staged_left = query(st.url, "select count(*) from pg_tables where schemaname = 'raw_staging'")
    assert status == "quarantined" and "expands beyond 60000 bytes" in reason and "\n" not in reason
    assert codes == [("too_large",)] and staged_left == [(0,)]


def test_staging_tables_left_by_an_abandoned_run_are_dropped_by_the_next_staging(warehouse_url, tmp_path, monkeypatch):
    """A run that stopped between validate and load leaves its staging table: a day later, the next bulk staging drops
    it (no validated batch names it); a fresh one (another run may be about to publish it) is kept."""
    from ingest.warehouse import LOADER, connect

    with (
        ReplayServer(SAMPLES_DIR / "eurostat") as server,
        isolated_stage(
            warehouse_url, tmp_path, EUROSTAT_BASE_URL=server.base_url, EUROSTAT_BACKOFF_SCALE="0.001"
        ) as st,
    ):
        with connect(role=LOADER) as conn, conn.cursor() as cur:
            for name, age in (("eurostat_observations_old", "2 days"), ("eurostat_observations_new", "1 hour")):
                cur.execute(f"create table raw_staging.{name} (dataset text)")  # noqa: S608 - fixed names
                cur.execute("select (now() - %s::interval)::text", (age,))
                cur.execute(f"comment on table raw_staging.{name} is 'b staged at {cur.fetchone()[0]}'")  # noqa: S608
        conn.close()
        _night(monkeypatch, _catalogue(tmp_path, bulk=True), "after_crash")
        left = query(st.url, "select tablename from pg_tables where schemaname = 'raw_staging' order by 1")
    assert left == [("eurostat_observations_new",)]


def test_a_bulk_file_of_which_the_catalogue_selects_no_row_is_quarantined_not_published_empty(
    warehouse_url, tmp_path, monkeypatch
):
    """Eurostat renamed the unit the catalogue filters on: the Statistics API would answer with an error, so the bulk
    batch is quarantined in one line and the dataset's rows stay as they were."""
    with (
        ReplayServer(SAMPLES_DIR / "eurostat") as server,
        isolated_stage(
            warehouse_url, tmp_path, EUROSTAT_BASE_URL=server.base_url, EUROSTAT_BACKOFF_SCALE="0.001"
        ) as st,
    ):
        _night(monkeypatch, _catalogue(tmp_path, bulk=True), "before")
        before = query(st.url, ROWS, CODE)
        cat = yaml.safe_load(Path(_catalogue(tmp_path, bulk=True)).read_text(encoding="utf-8"))
        entry = next(e for e in cat["eurostat_datasets"] if e["code"] == CODE)
        entry["filters"]["unit"] = ["NO_SUCH_UNIT"]
        renamed = tmp_path / "renamed.yml"
        renamed.write_text(yaml.safe_dump(cat, sort_keys=False), encoding="utf-8")
        server.script(f"/sdmx/2.1/data/{CODE}", [None])
        out = _night(monkeypatch, str(renamed), "renamed")
        ((status, reason),) = query(
            st.url, "select status, reason from audit.batches where batch_id = %s", out["extract"]["batch_id"]
        )
        after = query(st.url, ROWS, CODE)
    assert out["validate"]["quarantined"] == 1 and status == "quarantined"
    assert "select no row of the bulk file" in reason and after == before


@pytest.mark.parametrize(
    ("extra", "refusal"),
    [
        ("grant update (value) on raw_staging.{t} to transformer", "not a plain table of the loader"),
        ("create index on raw_staging.{t} (geo)", "has an index other than the key's|not a plain table"),
        ("alter table raw_staging.{t} alter column value set default 0", "not a plain table of the loader"),
    ],
)
def test_the_publish_function_takes_only_a_plain_table_of_the_loader(warehouse_url, tmp_path, extra, refusal):
    """raw.publish_partition runs as the administrator: a staged table carrying anything but rows (a grant, an index
    that is not the key's, a default) is refused, and raw is left as it was."""
    import re

    import psycopg2

    from ingest.warehouse import LOADER, connect

    with isolated_stage(warehouse_url, tmp_path) as st:
        conn = connect(role=LOADER)
        with conn, conn.cursor() as cur:
            cur.execute(
                "create table raw_staging.t (dataset text, series_key text, dims jsonb, geo text, time text,"
                " value numeric, obs_status text, conf_status text, source_updated_at timestamptz, batch_id text)"
            )
            cur.execute("insert into raw_staging.t values ('x', 'k', '{}', 'DE', '2020', 1, null, null, null, 'b')")
            cur.execute(extra.format(t="t"))
        with pytest.raises(psycopg2.Error) as err, conn, conn.cursor() as cur:
            cur.execute("select raw.publish_partition('eurostat_observations', 'x', 't')")
        conn.close()
        rows = query(st.url, "select count(*) from raw.eurostat_observations where dataset = 'x'")
    assert re.search(refusal, str(err.value)) and rows == [(0,)]
