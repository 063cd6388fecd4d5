"""End-to-end build of the dbt project on a throwaway database.

Takes a Postgres server from ``WAREHOUSE_URL`` (fallback: the local server
``postgresql://postgres@127.0.0.1:5432/postgres``), creates a database, applies ``ingest/migrations/*.sql``, loads
the bundled catalogue's partnership tables, inserts the synthetic fixture rows of ``tests/dbt/fixtures``, runs ``dbt
seed`` + ``dbt build`` (models, snapshot, data tests, unit tests) through ``dbtRunner`` and checks hand-computed
values in every mart, the descriptions persisted as comments (``persist_docs``) and the one-file dbt docs page the
``build_docs`` task publishes (``dbt docs generate --static``). Then a Eurostat revision is loaded to check the
snapshot, ``mart_eurostat_revisions`` and the ``as_of_date`` var.
"""

from __future__ import annotations

import json
import os
import re
import uuid
from decimal import Decimal
from pathlib import Path
from urllib.parse import unquote, urlsplit, urlunsplit

import pytest

from ingest.partnership import load_partnership

psycopg2 = pytest.importorskip("psycopg2")
dbt_main = pytest.importorskip("dbt.cli.main")
yaml = pytest.importorskip("yaml")

REPO = Path(__file__).resolve().parents[2]
PROJECT_DIR = REPO / "dbt_project"
MIGRATIONS_DIR = REPO / "ingest" / "migrations"
FIXTURES_DIR = Path(__file__).resolve().parent / "fixtures"
DEFAULT_SERVER_URL = "postgresql://postgres@127.0.0.1:5432/postgres"

pytestmark = pytest.mark.timeout(900)


def _server_url() -> str:
    return os.environ.get("WAREHOUSE_URL") or DEFAULT_SERVER_URL


def _with_dbname(url: str, dbname: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path=f"/{dbname}"))


def dbt_env(url: str) -> dict[str, str]:
    parts = urlsplit(url)
    return {
        "WAREHOUSE_HOST": parts.hostname or "127.0.0.1",
        "WAREHOUSE_PORT": str(parts.port or 5432),
        "WAREHOUSE_USER": unquote(parts.username or "postgres"),
        "WAREHOUSE_PASSWORD": unquote(parts.password or ""),
        "WAREHOUSE_DBNAME": (parts.path or "/").lstrip("/"),
        "WAREHOUSE_ROLE": "transformer",  # as in the pipeline: dbt acts as the transformer role only
    }


def _run_sql_file(url: str, path: Path) -> None:
    _execute(url, path.read_text(encoding="utf-8"))


def _execute(url: str, sql: str, params: tuple = ()) -> None:
    conn = psycopg2.connect(url)
    try:
        with conn, conn.cursor() as cur:
            cur.execute(sql, params or None)
    finally:
        conn.close()


@pytest.fixture(scope="module")
def dbt_database():
    """A throwaway, migrated database with the fixture rows; dropped afterwards."""
    server = _server_url()
    name = f"t_dbt_{uuid.uuid4().hex[:10]}"
    try:
        admin = psycopg2.connect(server)
    except psycopg2.OperationalError as exc:  # pragma: no cover - environment without Postgres
        pytest.skip(f"no Postgres server reachable: {exc}")
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f'create database "{name}"')
    url = _with_dbname(server, name)
    try:
        for migration in sorted(MIGRATIONS_DIR.glob("[0-9][0-9][0-9][0-9]_*.sql")):
            _run_sql_file(url, migration)
        load_partnership(url)  # the bundled catalogue's clusters, regions and strategy targets
        _run_sql_file(url, FIXTURES_DIR / "eurostat_observations.sql")
        _run_sql_file(url, FIXTURES_DIR / "surveys.sql")
        yield url
    finally:
        with admin.cursor() as cur:
            cur.execute(f'drop database if exists "{name}" with (force)')
        admin.close()


@pytest.fixture(scope="module")
def dbt(dbt_database, tmp_path_factory):
    """Run dbt commands against the throwaway database (env vars as in profiles.yml)."""
    target_path = tmp_path_factory.mktemp("dbt_target")
    saved = {key: os.environ.get(key) for key in dbt_env(dbt_database)}
    os.environ.update(dbt_env(dbt_database))

    def run(*args: str):
        cli = [
            *args,
            "--project-dir",
            str(PROJECT_DIR),
            "--profiles-dir",
            str(PROJECT_DIR),
            "--target-path",
            str(target_path),
            "--log-path",
            str(target_path / "logs"),
        ]
        result = dbt_main.dbtRunner().invoke(cli)
        failures = []
        if result.result is not None and hasattr(result.result, "results"):
            failures = [
                f"{r.node.unique_id}: {r.status} {r.message}"
                for r in result.result.results
                if str(r.status) in ("error", "fail", "runtime error")
            ]
        assert result.success, f"dbt {' '.join(args)} failed: {result.exception or failures}"
        return result

    run.target_path = target_path  # where dbt writes its artifacts (manifest.json, the docs pages)
    yield run
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


def _query(url: str, sql: str, params: tuple = (), role: str | None = None) -> list[dict]:
    conn = psycopg2.connect(url)
    try:
        with conn.cursor() as cur:
            if role:  # act as that role, as ingest.warehouse.connect(role=...) does
                cur.execute(f'set role "{role}"')
            cur.execute(sql, params)
            columns = [c.name for c in cur.description]
            return [dict(zip(columns, row, strict=True)) for row in cur.fetchall()]
    finally:
        conn.close()


def _one(url: str, sql: str, params: tuple = (), role: str | None = None) -> dict:
    rows = _query(url, sql, params, role)
    assert len(rows) == 1, f"expected one row, got {rows}"
    return rows[0]


def _indicator(url: str, cluster_id: str, indicator_code: str, year: int) -> dict:
    return _one(
        url,
        "select * from marts.mart_partnership_indicators where cluster_id = %s and indicator_code = %s and year = %s",
        (cluster_id, indicator_code, year),
    )


BENCHMARK_VERSIONS = (
    "select indicator_code, count(*) as n, string_agg(distinct xmin::text, ',') as xmins "
    "from marts.mart_region_benchmarks group by indicator_code order by indicator_code"
)
RESOLVED_VERSIONS = (
    "select dataset, count(*) as n, string_agg(distinct xmin::text, ',') as xmins "
    "from intermediate.int_indicator_values_resolved group by dataset"
)


def _num(value) -> float | None:
    return None if value is None else float(value) if isinstance(value, Decimal | int | float) else value


def test_dbt_build_and_marts(dbt, dbt_database):
    url = dbt_database
    dbt("seed")
    dbt("build")

    # -- schemas land exactly where configured
    schemas = {
        r["table_schema"]
        for r in _query(
            url,
            "select distinct table_schema from information_schema.tables "
            "where table_schema in ('staging', 'intermediate', 'marts', 'reference', 'snapshots')",
        )
    }
    assert schemas == {"staging", "intermediate", "marts", "reference", "snapshots"}

    # -- mart_partnership_indicators: progress, on-track, index vs EU, CAGR, weighting, flags
    row = _indicator(url, "indescat", "GDP_EUR_HAB", 2023)
    assert _num(row["value"]) == 32400
    assert _num(row["index_vs_eu"]) == 90  # 100 * 32400 / 36000
    assert _num(row["progress"]) == 0.6  # (32400 - 30000) / (34000 - 30000)
    assert _num(row["elapsed_share"]) == 0.6  # (2023 - 2020) / (2025 - 2020)
    assert row["is_on_track"] is True
    assert _num(row["national_value"]) == 28800
    assert row["batch_ids"] == "b_fixture_1"

    row = _indicator(url, "indescat", "GDP_EUR_HAB", 2025)
    assert _num(row["cagr"]) == pytest.approx(1.1**0.2 - 1, abs=1e-6)  # (33000 / 30000)^(1/5) - 1
    assert row["is_estimated"] is True and row["is_on_track"] is False  # progress 0.75 < 1

    row = _indicator(url, "sports_technology", "GDP_EUR_HAB", 2020)
    # population-weighted: (36000*0.4 + 42000*2.6 + 38000*1.0 + 40400*4.0) / 8.0 million
    assert _num(row["value"]) == 40400
    assert row["geo_codes"] == "NL34,NL36,NL41,NL42"  # NL36: a NUTS 2024-only code
    row = _indicator(url, "sports_technology", "GDP_EUR_HAB", 2025)
    assert _num(row["value"]) == 47750 and row["is_break"] is True
    assert _num(row["cagr"]) == pytest.approx((47750 / 40400) ** 0.2 - 1, abs=1e-6)

    row = _indicator(url, "sports_technology", "GERD_PC_GDP", 2023)
    assert _num(row["value"]) == 2.7  # GDP-weighted (2*20000 + 3*140000 + 2*40000 + 2.7*100000) / 300000
    assert _num(row["index_vs_eu"]) == 120  # 100 * 2.7 / 2.25
    assert _num(row["progress"]) == 0.4 and row["is_on_track"] is False

    row = _indicator(url, "sports_technology", "SME_ENT_SHARE", 2022)
    assert _num(row["value"]) == 99.5 and row["geo_scope"] == "country"  # (950 + 35 + 10) / 1000
    assert _num(row["index_vs_eu"]) == 99.7
    assert row["quality_flag"] is None

    # shares from inconsistent / incomplete size classes are withheld with a reason, never > 100 %
    row = _indicator(url, "sports_technology", "SME_EMP_SHARE", 2022)
    assert row["value"] is None and row["index_vs_eu"] is None and row["eu27_value"] is None
    assert row["quality_flag"] == "value:share_above_100,eu27_value:share_numerator_incomplete"
    row = _indicator(url, "epsi", "SME_EMP_SHARE", 2022)
    assert row["value"] is None and row["quality_flag"] == "value:share_numerator_incomplete"
    assert (
        _one(
            url,
            "select count(*) as n from marts.mart_partnership_indicators "
            "where unit like 'PC%%' and (value < 0 or value > 100)",
        )["n"]
        == 0
    )

    row = _indicator(url, "epsi", "DIG_INT_HI", 2023)
    assert row["geo_scope"] == "eu" and _num(row["value"]) == 26 and row["national_value"] is None
    assert _num(row["progress"]) == 0.6 and row["is_on_track"] is True  # (26 - 20) / (30 - 20)

    row = _indicator(url, "indescat", "MEMBERS_TOTAL", 2025)
    assert _num(row["value"]) == 90 and _num(row["progress"]) == 0.6 and _num(row["elapsed_share"]) == 0.2

    # -- NUTS versions: PT16 (NUTS 2021 only) dropped because PT19 (NUTS 2024) has newer data
    pt = {
        r["geo_code"]: r["nuts_version"]
        for r in _query(
            url,
            "select geo_code, nuts_version from intermediate.int_indicator_values_resolved "
            "where indicator_code = 'GDP_EUR_HAB' and country_code = 'PT'",
        )
    }
    assert pt == {"PT11": "2024", "PT19": "2024"}

    # -- mart_region_benchmarks: location quotient and rank
    lq = {
        r["geo_code"]: r
        for r in _query(
            url, "select * from marts.mart_region_benchmarks where indicator_code = 'EMP_R93_REG' and year = 2022"
        )
    }
    assert _num(lq["FRK2"]["location_quotient"]) == 1.5  # (30000 / 2e6) / (1e6 / 1e8)
    assert _num(lq["FRK1"]["location_quotient"]) == 0.8  # (4000 / 5e5) / 0.01
    assert [lq[geo]["rank_in_level"] for geo in ("ES51", "FRK2", "FRK1")] == [1, 2, 3]
    hu = _one(
        url,
        "select * from marts.mart_region_benchmarks "
        "where geo_code = 'HU32' and indicator_code = 'EMP_C32_REG' and year = 2022",
    )
    assert hu["is_confidential"] is True and hu["value"] is None and hu["rank_in_level"] is None

    # -- mart_sme_needs: gap and ranks
    needs = {
        (r["cluster_id"], r["service_code"]): r
        for r in _query(url, "select * from marts.mart_sme_needs where wave = 2025")
    }
    digi = needs[("indescat", "digitalisation")]
    assert [_num(digi[c]) for c in ("mean_importance", "mean_satisfaction", "gap")] == [4, 2.5, 1.5]
    assert digi["n_respondents"] == 3 and digi["rank_in_cluster"] == 1 and digi["partnership_rank"] == 2
    assert _num(digi["interest_share_technology"]) == pytest.approx(2 / 3, abs=1e-6)
    fund = needs[("sports_technology", "funding_access")]
    assert _num(fund["gap"]) == 2 and fund["rank_in_cluster"] == 1
    assert _num(fund["partnership_gap"]) == 1.25 and fund["partnership_rank"] == 1

    # -- mart_cluster_kpis: growth, retention, latest file wins
    kpi = _one(url, "select * from marts.mart_cluster_kpis where cluster_id = 'indescat' and year = 2025")
    assert kpi["members_total"] == 90 and _num(kpi["member_growth"]) == 0.2
    assert _num(kpi["member_retention"]) == 0.96 and _num(kpi["sme_low_carbon_share_pct"]) == 50
    kpis = "select * from marts.mart_cluster_kpis where cluster_id = %s and year = %s"
    hu_kpi = _one(url, kpis, ("mse_cluster", 2025))
    assert hu_kpi["members_total"] == 30 and hu_kpi["batch_ids"] == "b_soa_hu_2025_new"

    # -- mart_cluster_similarity: cosine of gap vectors, shared needs, SWOT synergies
    pair = _one(
        url,
        "select * from marts.mart_cluster_similarity where cluster_a = 'indescat' and cluster_b = 'sports_technology'",
    )
    # gaps (1.5, 0.5, 0) vs (1, 2, 0): 2.5 / (sqrt(2.5) * sqrt(5)) = 0.707107
    assert _num(pair["needs_similarity"]) == pytest.approx(0.707107, abs=1e-6)

    # -- full precision inside, one rounding at the mart (from the exact ratio, never from a rounded one)
    share = _indicator(url, "indescat", "MEMBERS_SME_SHARE", 2025)["value"]
    assert share == (Decimal(100) * Decimal(70) / Decimal(90)).quantize(Decimal("0.000001"))  # 77.777778
    assert _one(url, kpis, ("indescat", 2025))["sme_share_of_members"] == Decimal("0.777778")
    assert pair["top_shared_needs"] == "digitalisation,funding_access"
    assert pair["a_strengths_for_b_weaknesses"] == "digital"
    assert pair["b_strengths_for_a_weaknesses"] == "sustainability"
    assert -1 <= _num(pair["indicator_similarity"]) <= 1

    # -- mart_matchmaking: only cross-cluster pairs, scored
    matches = {
        (r["offer_respondent_pid"], r["need_respondent_pid"], r["topic_code"]): _num(r["match_score"])
        for r in _query(url, "select * from marts.mart_matchmaking")
    }
    assert matches == {
        ("nl_n1", "es_r1", "data_analytics_ai"): 1.25,
        ("nl_n2", "es_r1", "funding_access"): 1.75,
        ("es_r2", "nl_n2", "living_lab_testing"): 1.0,
    }

    # -- no revisions yet
    assert _query(url, "select * from marts.mart_eurostat_revisions") == []


MARTS_YAML = PROJECT_DIR / "models" / "marts"
COMMENTS = """
select n.nspname as schema, c.relname as relation, obj_description(c.oid, 'pg_class') as description,
       a.attname as column_name, col_description(c.oid, a.attnum) as column_description
from pg_class c
join pg_namespace n on n.oid = c.relnamespace
join pg_attribute a on a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
where n.nspname = any(%s) and c.relkind in ('r', 'p', 'v', 'm')
order by 1, 2, a.attnum
"""


def _built(dbt, url: str) -> None:
    """The project as test_dbt_build_and_marts left it (built here when a test runs alone)."""
    if not _query(url, "select 1 from information_schema.tables where table_schema = 'marts' limit 1"):
        dbt("build")


def _mart_docs() -> dict[str, dict]:
    """Every mart's description and column descriptions, exactly as written in its YAML (None: none written)."""
    docs = {}
    for path in sorted(MARTS_YAML.glob("*.yml")):
        for model in yaml.safe_load(path.read_text(encoding="utf-8")).get("models") or []:
            docs[model["name"]] = {
                "description": model.get("description") or None,
                "columns": {c["name"]: c.get("description") or None for c in model.get("columns") or []},
            }
    return docs


def _comments(url: str, schemas: list[str], role: str | None = None) -> dict[tuple[str, str], dict]:
    """(schema, relation) -> its comment and its columns' comments, read from the catalog."""
    found: dict[tuple[str, str], dict] = {}
    for r in _query(url, COMMENTS, (schemas,), role):
        rel = found.setdefault((r["schema"], r["relation"]), {"description": r["description"], "columns": {}})
        rel["columns"][r["column_name"]] = r["column_description"]
    return found


def test_descriptions_persisted_as_comments(dbt, dbt_database):
    """persist_docs: what the YAML says of each relation and column is its comment in Postgres, where BI tools and
    psql (\\d+) show it, and bi_reader can read it."""
    url = dbt_database
    _built(dbt, url)

    # Every mart and every one of its columns carries exactly its YAML description, read as bi_reader.
    marts = _mart_docs()
    assert "mart_partnership_indicators" in marts and len(marts) >= 7
    got = _comments(url, ["marts"], role="bi_reader")
    assert {name: got.get(("marts", name)) for name in marts} == marts
    row = _one(
        url,
        "select current_user as who, obj_description('marts.mart_partnership_indicators'::regclass, 'pg_class') as d,"
        " col_description(a.attrelid, a.attnum) as progress from pg_attribute a"
        " where a.attrelid = 'marts.mart_partnership_indicators'::regclass and a.attname = 'progress'",
        role="bi_reader",
    )
    docs = marts["mart_partnership_indicators"]
    assert row == {"who": "bi_reader", "d": docs["description"], "progress": docs["columns"]["progress"]}
    assert row["progress"].startswith("(value - baseline_value) / (target_value - baseline_value)")

    # Views, tables, incremental models, the snapshot and the seeds too: every relation dbt built carries the
    # description of its node in dbt's manifest, and so does each documented column.
    manifest = json.loads((dbt.target_path / "manifest.json").read_text(encoding="utf-8"))
    nodes = [
        n
        for n in manifest["nodes"].values()
        if n["package_name"] == "ss4gl"
        and n["resource_type"] in ("model", "seed", "snapshot")
        and n["config"]["materialized"] != "ephemeral"
    ]
    got = _comments(url, sorted({n["schema"] for n in nodes}))
    kinds = set()
    for node in nodes:
        relation = got.get((node["schema"], node["alias"]))
        assert relation is not None, f"{node['unique_id']} not built"
        assert relation["description"] == (node["description"] or None), node["unique_id"]
        for name, column in node["columns"].items():
            if name in relation["columns"]:  # a column of a snapshot's input listed only for its tests
                assert relation["columns"][name] == (column["description"] or None), f"{node['unique_id']}.{name}"
        kinds.add(node["resource_type"] if node["resource_type"] != "model" else node["config"]["materialized"])
    assert {"view", "table", "incremental", "seed", "snapshot"} <= kinds


def _inlined(html: str, name: str, start: int = 0) -> tuple[dict, int]:
    """The JSON object dbt's static page inlines as ``<name>:{...}``, and where it ends."""
    match = re.compile(rf"\b{name}\s*:\s*(?=\{{)").search(html, start)
    assert match, f"no inlined {name} in static_index.html"
    return json.JSONDecoder().raw_decode(html, match.end())


def test_static_docs_published(dbt, dbt_database, monkeypatch, tmp_path):
    """The build_docs task runs `dbt docs generate --static` (through this module's dbt helper, on the built fixture
    database) and publishes dbt's one-file page where the run summary points: manifest and catalog inlined, so it
    opens from disk or a file share without a web server."""
    import ingest.config
    import ingest.dashboard.build
    from ingest.storage import Storage
    from ingest.tasks import publish, transform
    from ingest.tasks.common import RunContext

    _built(dbt, dbt_database)
    commands: list[list[str]] = []

    def run_dbt(command: list[str], ctx=None, extra_vars=None) -> dict:
        commands.append(command)
        dbt(*command)
        return {}

    def build_dashboard(url: str, out_dir: Path) -> Path:  # not what this test is about
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "index.html").write_text("<html></html>", encoding="utf-8")
        return out_dir / "index.html"

    store = Storage(tmp_path / "published")
    monkeypatch.setattr(transform, "run_dbt", run_dbt)
    monkeypatch.setattr(ingest.config, "dbt_target_dir", lambda: dbt.target_path)
    monkeypatch.setattr(ingest.config, "dashboard_dir", lambda: tmp_path / "dashboard")
    monkeypatch.setattr(ingest.dashboard.build, "build_dashboard", build_dashboard)
    monkeypatch.setattr(publish, "default_storage", lambda: store)
    monkeypatch.setattr(publish, "warehouse_url", lambda: dbt_database)

    where = publish.build_docs(RunContext("t_static_docs", "2026-11-30"), built=True)
    assert commands == [["docs", "generate", "--static"]]
    published = tmp_path / "published" / "dbt" / "target"
    assert Path(where["dbt_docs"]) == published / "static_index.html"
    assert sorted(p.name for p in published.iterdir()) == sorted(publish.DBT_ARTIFACTS)  # index.html kept too

    # dbt's page takes the manifest and the catalog from its inline data when they are objects, and only otherwise
    # fetches manifest.json / catalog.json next to it (which a page opened from disk cannot): both are inlined.
    html = Path(where["dbt_docs"]).read_text(encoding="utf-8")
    assert "MANIFEST.JSON INLINE DATA" not in html and "CATALOG.JSON INLINE DATA" not in html
    manifest, end = _inlined(html, "manifest")
    catalog, _ = _inlined(html, "catalog", end)
    assert re.search(r"<script[^>]*\ssrc\s*=", html) is None  # no script loaded from elsewhere either
    node = "model.ss4gl.mart_partnership_indicators"
    docs = _mart_docs()["mart_partnership_indicators"]
    assert manifest["nodes"][node]["description"] == docs["description"]
    # the catalog (what the warehouse says) shows the comments persist_docs wrote
    assert catalog["nodes"][node]["metadata"]["comment"] == docs["description"]
    assert catalog["nodes"][node]["columns"]["progress"]["comment"] == docs["columns"]["progress"]


def test_revisions_and_as_of_date(dbt, dbt_database):
    url = dbt_database
    if not _query(url, "select 1 from information_schema.tables where table_schema = 'snapshots'"):
        dbt("build")  # first release snapshotted (when this test runs alone)
    row_versions = (
        "select dataset, count(*) as n, string_agg(distinct xmin::text, ',') as xmins, "
        "string_agg(distinct batch_id, ',' order by batch_id) as batches "
        "from staging.stg_eurostat__observations group by dataset"
    )
    before = {r["dataset"]: r for r in _query(url, row_versions)}
    resolved_before = {r["dataset"]: r for r in _query(url, RESOLVED_VERSIONS)}
    benchmarks_before = {r["indicator_code"]: r for r in _query(url, BENCHMARK_VERSIONS)}
    _run_sql_file(url, FIXTURES_DIR / "eurostat_revision.sql")
    # the mart alone: the values it reads have not changed yet, so it recomputes nothing (and later, once they
    # have, it does: its fingerprints come from the values it reads, not from raw)
    dbt("build", "-s", "mart_region_benchmarks")
    assert _query(url, BENCHMARK_VERSIONS) == list(benchmarks_before.values())
    dbt("build")

    # Incremental staging: only the revised dataset was re-typed (all its rows, new row versions); the rows of
    # every other dataset are the very same tuples as before (same xmin), and nothing was lost or duplicated.
    after = {r["dataset"]: r for r in _query(url, row_versions)}
    assert set(after) == set(before) and len(after) > 1
    assert {d: r["n"] for d, r in after.items()} == {d: r["n"] for d, r in before.items()}
    changed = {d for d in after if after[d]["xmins"] != before[d]["xmins"]}
    assert changed == {"nama_10r_2gdp"}
    assert after["nama_10r_2gdp"]["batches"] == "b_fixture_1,b_fixture_2"
    # ... and the indicator values were recomputed for that dataset only (incremental per dataset)
    resolved_after = {r["dataset"]: r for r in _query(url, RESOLVED_VERSIONS)}
    assert {d: r["n"] for d, r in resolved_after.items()} == {d: r["n"] for d, r in resolved_before.items()}
    assert {d for d in resolved_after if resolved_after[d]["xmins"] != resolved_before[d]["xmins"]} == {"nama_10r_2gdp"}
    # ... and the region benchmarks for the indicators of that dataset only (incremental per indicator)
    benchmarks_after = {r["indicator_code"]: r for r in _query(url, BENCHMARK_VERSIONS)}
    assert {i: r["n"] for i, r in benchmarks_after.items()} == {i: r["n"] for i, r in benchmarks_before.items()}
    gdp = {
        r["indicator_code"]
        for r in _query(url, "select indicator_code from reference.indicators where source_dataset = 'nama_10r_2gdp'")
    }
    assert (
        {i for i in benchmarks_after if benchmarks_after[i]["xmins"] != benchmarks_before[i]["xmins"]}
        == (gdp & set(benchmarks_after))
        != set()
    )
    # the snapshot compared only that dataset (all its rows: the snapshot's input holds nothing else)
    pending = (
        "select dataset, count(*) as n from intermediate.int_eurostat_observations_to_snapshot "
        "group by dataset order by dataset"
    )
    per_dataset = "select dataset, count(*) as n from raw.eurostat_observations where dataset {} %s group by dataset"
    assert _query(url, pending) == _query(url, per_dataset.format("="), ("nama_10r_2gdp",))
    _run_sql_file(url, FIXTURES_DIR / "eurostat_revision.sql")  # the same content again: nothing new
    dbt("build", "-s", "stg_eurostat__observations", "int_eurostat_observations_to_snapshot")
    assert _query(url, pending) == []
    other = _query(url, per_dataset.format("<>") + " order by dataset limit 1", ("nama_10r_2gdp",))
    _execute(
        url, "update raw.eurostat_observations set batch_id = 'b_fixture_3' where dataset = %s", (other[0]["dataset"],)
    )
    dbt("build", "-s", "stg_eurostat__observations", "int_eurostat_observations_to_snapshot")
    assert _query(url, pending) == other  # a new batch (identical values): that dataset only, all its rows
    # indexes declared in model configs survive a rebuild (the table is replaced, its index is recreated)
    indexed = {
        r["tablename"]
        for r in _query(url, "select tablename from pg_indexes where schemaname in ('staging', 'intermediate')")
    }
    assert {"stg_eurostat__observations", "int_sme_offers_needs_profiled"} <= indexed
    # the staging key is a unique index (no nightly full-scan test): a duplicate observation cannot be written
    with pytest.raises(psycopg2.errors.UniqueViolation):
        _execute(
            url,
            "insert into staging.stg_eurostat__observations select * from staging.stg_eurostat__observations limit 1",
        )
    with pytest.raises(psycopg2.errors.UniqueViolation):  # same for the indicator values' key
        _execute(
            url,
            "insert into intermediate.int_indicator_values_resolved "
            "select * from intermediate.int_indicator_values_resolved limit 1",
        )
    with pytest.raises(psycopg2.errors.UniqueViolation):  # and for the region benchmarks' key
        _execute(url, "insert into marts.mart_region_benchmarks select * from marts.mart_region_benchmarks limit 1")
    snapshot_indexes = _query(url, "select indexname from pg_indexes where schemaname = 'snapshots'")
    assert {"indexname": "snap_eurostat_observations_batch_idx"} in snapshot_indexes

    revisions = "select * from marts.mart_eurostat_revisions where geo_code = 'ES51' and time_period = %s"
    revision = _one(url, revisions, ("2023",))
    assert (_num(revision["previous_value"]), _num(revision["value"]), _num(revision["revision_delta"])) == (
        32400,
        32000,
        -400,
    )
    assert revision["previous_batch_id"] == "b_fixture_1" and revision["batch_id"] == "b_fixture_2"
    flags = _one(url, revisions, ("2024",))
    assert flags["previous_obs_status"] == "p" and flags["obs_status"] is None

    latest = _indicator(url, "indescat", "GDP_EUR_HAB", 2023)
    assert _num(latest["value"]) == 32000 and _num(latest["progress"]) == 0.5
    assert latest["is_on_track"] is False

    # Rebuild "as published on 2025-06-30": the first release again.
    dbt("build", "--vars", "{as_of_date: '2025-06-30'}")
    as_of = _indicator(url, "indescat", "GDP_EUR_HAB", 2023)
    assert _num(as_of["value"]) == 32400 and _num(as_of["progress"]) == 0.6 and as_of["is_on_track"] is True
    assert str(as_of["as_of_date"]) == "2025-06-30" and as_of["batch_ids"] == "b_fixture_1"
    provisional = _indicator(url, "indescat", "GDP_EUR_HAB", 2024)
    assert provisional["is_provisional"] is True

    # Back to the latest values: the as-of rows carry another fingerprint, so every dataset is recomputed.
    dbt("build", "-s", "int_indicator_values_resolved+")
    assert _num(_indicator(url, "indescat", "GDP_EUR_HAB", 2023)["value"]) == 32000
    es51 = _one(
        url,
        "select value from marts.mart_region_benchmarks "
        "where geo_code = 'ES51' and indicator_code = 'GDP_EUR_HAB' and year = 2023",
    )
    assert _num(es51["value"]) == 32000


def test_indicator_values_follow_the_indicator_definitions(dbt, dbt_database):
    """A changed or removed indicator definition recomputes (or removes) its dataset's values, nothing else."""
    url = dbt_database
    dbt("build", "-s", "+mart_region_benchmarks", "--indirect-selection", "cautious")
    before = {r["dataset"]: r for r in _query(url, RESOLVED_VERSIONS)}
    assert before["rd_e_gerdreg"]["n"] > 0 and len(before) > 2
    benchmarks_before = {r["indicator_code"]: r for r in _query(url, BENCHMARK_VERSIONS)}
    assert {"GERD_PC_GDP", "GDP_EUR_HAB", "GDP_MEUR"} <= set(benchmarks_before)

    _execute(url, "delete from reference.indicators where source_dataset = 'rd_e_gerdreg'")
    _execute(
        url,
        "update reference.indicators set indicator_name = indicator_name || ' (renamed)' "
        "where indicator_code = 'GDP_EUR_HAB'",
    )
    dbt("build", "-s", "int_indicator_values_resolved", "mart_region_benchmarks")
    after = {r["dataset"]: r for r in _query(url, RESOLVED_VERSIONS)}
    assert set(after) == set(before) - {"rd_e_gerdreg"}
    assert {d for d in after if after[d]["xmins"] != before[d]["xmins"]} == {"nama_10r_2gdp"}
    assert after["nama_10r_2gdp"]["n"] == before["nama_10r_2gdp"]["n"]
    # the mart: the removed indicators' rows are gone, the renamed one's dataset recomputed, every other untouched
    benchmarks_after = {r["indicator_code"]: r for r in _query(url, BENCHMARK_VERSIONS)}
    removed = {i for i in benchmarks_before if i in ("GERD_PC_GDP", "BERD_PC_GDP")}
    assert set(benchmarks_after) == set(benchmarks_before) - removed and "GERD_PC_GDP" in removed
    gdp = {
        r["indicator_code"]
        for r in _query(  # the renamed indicator's dataset: a unit of work in both models
            url, "select indicator_code from reference.indicators where source_dataset = 'nama_10r_2gdp'"
        )
    }
    assert (
        {i for i in benchmarks_after if benchmarks_after[i]["xmins"] != benchmarks_before[i]["xmins"]}
        == (gdp & set(benchmarks_after))
        >= {"GDP_EUR_HAB", "GDP_MEUR"}
    )

    dbt("seed", "-s", "indicators")  # the seed file again: both datasets back as they were
    dbt("build", "-s", "int_indicator_values_resolved", "mart_region_benchmarks")
    restored = {r["dataset"]: r["n"] for r in _query(url, RESOLVED_VERSIONS)}
    assert restored == {d: r["n"] for d, r in before.items()}
    restored = {r["indicator_code"]: r["n"] for r in _query(url, BENCHMARK_VERSIONS)}
    assert restored == {i: r["n"] for i, r in benchmarks_before.items()}


def test_the_run_logical_date_reaches_the_compiled_sql(dbt, monkeypatch):
    """A nightly gives dbt its date as SS4GL_LOGICAL_DATE (read at execution only, so dbt's partial parse stays
    valid from night to night); a backfill's var wins over it; with neither, every file received counts."""
    compiled = (
        dbt.target_path / "compiled" / "ss4gl" / "models" / "staging" / "surveys" / "stg_surveys__soa_profile.sql"
    )
    monkeypatch.setenv("SS4GL_LOGICAL_DATE", "2026-11-21")
    dbt("compile", "--select", "stg_surveys__soa_profile")
    assert "logical_date <= cast('2026-11-21' as date)" in compiled.read_text(encoding="utf-8")
    dbt("compile", "--select", "stg_surveys__soa_profile", "--vars", "{logical_date: '2026-11-19'}")
    assert "logical_date <= cast('2026-11-19' as date)" in compiled.read_text(encoding="utf-8")
    monkeypatch.delenv("SS4GL_LOGICAL_DATE")
    dbt("compile", "--select", "stg_surveys__soa_profile")
    assert "logical_date <=" not in compiled.read_text(encoding="utf-8")
