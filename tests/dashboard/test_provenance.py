"""The dashboard says what it shows (issue #18.6): a banner at the top of every page with the data's origin (the
bundled synthetic samples, unmistakably, or live sources), the as-of date and the last run's state, and on the
overview the open quarantines by problem code and the freshness per source.

Each scenario is a fresh migrated database with hand-made mart rows (``tests.dashboard.test_dashboard``) and audit
records shaped as a run writes them (``ingest/tasks``: a fetch per received body, a batch, a receipt, a dataset
check, the run summary). Origin is decided from those records only (``ingest.dashboard.provenance``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json

import psycopg2
import pytest

from ingest.config import SAMPLES_DIR
from ingest.dashboard.build import build_dashboard, page_name
from ingest.dashboard.provenance import MIXED_LABEL, SYNTHETIC_LABEL
from ingest.warehouse import READER, connect
from tests.dashboard.test_dashboard import CHROMIUM_TIMEOUT, XSS_PROBE, assert_page_ok, create_marts, sample_marts

DATE = "2026-11-26"
FINISHED = dt.datetime(2026, 11, 27, 1, 47, tzinfo=dt.UTC)
CLUSTERS = ["indescat", "epsi"]
REPLAY = "http://127.0.0.1:41873"  # offline mode: the local replay of the bundled Eurostat samples
EUROSTAT = "https://ec.europa.eu/eurostat/api/dissemination"
SAMPLE_FILE = sorted((SAMPLES_DIR / "inbox" / "epsi").rglob("*.*"))[0]  # a bundled synthetic survey file

# What the top of a page shows, as rendered (innerText applies the CSS, e.g. upper case).
BANNER_JS = r"""
(() => {
  const b = document.getElementById('provenance');
  if (!b) return JSON.stringify(null);
  const r = b.getBoundingClientRect(), s = getComputedStyle(b);
  return JSON.stringify({
    text: b.innerText, origin: b.dataset.origin, top: r.top, height: r.height,
    visible: s.display !== 'none' && s.visibility !== 'hidden' && r.height > 0 && r.bottom <= window.innerHeight,
    first: document.body.firstElementChild === b, title: document.title, body: document.body.innerText,
  });
})()
"""
# The rows of the overview's "open quarantines by problem code" table, as rendered.
CODES_JS = r"""
(() => {
  const t = document.querySelector('#quarantine-codes ~ table');
  return JSON.stringify(t ? Array.from(t.tBodies[0].rows).map((tr) => Array.from(tr.cells).map((c) => c.innerText))
                          : null);
})()
"""


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def record_run(
    url: str,
    *,
    eurostat_url: str,
    survey: tuple[str, bytes],
    outcome: str = "success",
    toc: bytes = b"toc",
    run_id: str = f"scheduled__{DATE}T00:30:00+00:00",
    logical_date: str = DATE,
    finished_at: dt.datetime = FINISHED,
) -> None:
    """Audit records of one nightly run that loaded a Eurostat dataset and a survey file and quarantined two survey
    files (problem codes unknown_nuts3 x2 + missing_value; wrong_depth), as the tasks write them."""
    body = json.dumps({"label": "nama_10r_2gdp", "origin": eurostat_url}).encode()
    e_sha, (s_path, s_bytes) = sha(body), survey
    s_sha = sha(s_bytes)
    e_batch, s_batch = f"eurostat:nama_10r_2gdp:{e_sha[:16]}", f"surveys:epsi/sme_needs/{s_path.rsplit('/', 1)[-1]}"
    conn = psycopg2.connect(url)
    try:
        with conn, conn.cursor() as cur:
            fetches = [  # (object, url, http status, sha256, size, minutes before the run finished)
                ("toc", f"{eurostat_url}/catalogue/toc/txt?lang=en", 200, sha(toc), len(toc), 30),
                ("nama_10r_2gdp", f"{eurostat_url}/statistics/1.0/data/nama_10r_2gdp?format=JSON&geo=ES51", 200,
                 e_sha, len(body), 29),
            ]  # fmt: skip
            for obj, address, status, digest, size, minutes in fetches + [
                (s_path, s_path, None, s_sha, len(s_bytes), 28)  # a survey file: its inbox path
            ]:
                source = "surveys" if address == s_path else "eurostat"
                cur.execute(
                    "insert into audit.fetches (run_id, logical_date, source, object, url, http_status, sha256,"
                    " size_bytes, fetched_at) values (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
                    (run_id, logical_date, source, obj, address, status, digest, size,
                     finished_at - dt.timedelta(minutes=minutes)),
                )  # fmt: skip
            cur.execute(
                "insert into audit.dataset_checks (run_id, logical_date, source, object, decision, reason,"
                " toc_last_update, checked_at) values (%s, %s, 'eurostat', 'nama_10r_2gdp', 'fetch', 'never loaded',"
                " '2026-02-15', %s)",
                (run_id, logical_date, finished_at - dt.timedelta(minutes=30)),
            )
            batches = [
                (e_batch, "eurostat", "nama_10r_2gdp", [e_sha], "loaded", None),
                (s_batch, "surveys", f"epsi/sme_needs/{s_path.rsplit('/', 1)[-1]}", [s_sha], "loaded", None),
                (
                    "surveys:epsi/sme_needs/bad.csv:1",
                    "surveys",
                    "epsi/sme_needs/bad.csv",
                    ["aa"],
                    "quarantined",
                    "bad.csv: row 2, column NUTS3: unknown nuts3 code",
                ),
                (
                    "surveys:None/None/stray.csv:2",
                    "surveys",
                    "None/None/stray.csv",
                    ["bb"],
                    "quarantined",
                    "stray.csv: file is not at <cluster>/<instrument>/<file>",
                ),
            ]
            for batch_id, source, obj, shas, status, reason in batches:
                cur.execute(
                    "insert into audit.batches (batch_id, source, object, sha256, run_id, logical_date, status,"
                    " reason, updated_at) values (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
                    (batch_id, source, obj, shas, run_id, logical_date, status, reason, finished_at),
                )
                cur.execute(
                    "insert into audit.run_batches (run_id, batch_id, source, object, sha256, logical_date, status,"
                    " reason) values (%s, %s, %s, %s, %s, %s, %s, %s)",
                    (run_id, batch_id, source, obj, shas, logical_date, status, reason),
                )
                cur.execute(
                    "insert into audit.batch_receipts (batch_id, source, object, sha256, run_id, logical_date,"
                    " received_at) values (%s, %s, %s, %s, %s, %s, %s)",
                    (batch_id, source, obj, shas, run_id, logical_date, finished_at - dt.timedelta(minutes=20)),
                )
            for batch_id, code, severity in (
                ("surveys:epsi/sme_needs/bad.csv:1", "unknown_nuts3", "error"),
                ("surveys:epsi/sme_needs/bad.csv:1", "unknown_nuts3", "error"),
                ("surveys:epsi/sme_needs/bad.csv:1", "missing_value", "error"),
                ("surveys:epsi/sme_needs/bad.csv:1", "unknown_column", "warning"),
                ("surveys:None/None/stray.csv:2", "wrong_depth", "error"),
            ):
                cur.execute(
                    "insert into audit.quarantine (batch_id, source, object, code, severity, message)"
                    " values (%s, 'surveys', 'x', %s, %s, 'Jan Müller, row 2')",
                    (batch_id, code, severity),
                )
            cur.execute(
                "insert into audit.source_state (source, object, batch_id, toc_last_update, loaded_at)"
                " values ('eurostat', 'nama_10r_2gdp', %s, '2026-02-15', %s)",
                (e_batch, finished_at - dt.timedelta(minutes=10)),
            )
            quarantined = [
                {"source": "surveys", "object": o, "reason": r, "codes": c}
                for o, r, c in (
                    ("epsi/sme_needs/bad.csv", batches[2][5], ["missing_value", "unknown_nuts3"]),
                    ("None/None/stray.csv", batches[3][5], ["wrong_depth"]),
                )
            ]
            summary = {
                "run_id": run_id,
                "logical_date": logical_date,
                "sources": {"eurostat": {"batches": {"loaded": 1}}, "surveys": {"batches": {"loaded": 1}}},
                "quarantined": quarantined if outcome != "success" else [],
                "failed_tasks": ["dbt.mart_matchmaking.run"] if outcome == "failed" else [],
                "missing_marts": [],
                "marts_schema": "marts",
                "outcome": outcome,
            }
            cur.execute(
                "insert into audit.run_summaries (run_id, dag_id, logical_date, finished_at, summary)"
                " values (%s, 'ss4gl_nightly', %s, %s, %s)",
                (run_id, logical_date, finished_at, json.dumps(summary)),
            )
    finally:
        conn.close()


def synthetic_run(url: str, **kwargs) -> None:
    """Offline mode: Eurostat from the local replay, a bundled sample file (copied into an inbox elsewhere)."""
    record_run(
        url,
        eurostat_url=REPLAY,
        survey=(f"/srv/inbox/epsi/sme_needs/{SAMPLE_FILE.name}", SAMPLE_FILE.read_bytes()),
        **kwargs,
    )


def live_run(url: str, **kwargs) -> None:
    """Eurostat's API and a survey file of the clusters' own (not a sample)."""
    record_run(
        url,
        eurostat_url=EUROSTAT,
        survey=("s3://ss4gl-inbox/epsi/sme_needs/results-2026.csv", b"respondent;nuts3\n1;BE100\n"),
        **kwargs,
    )


def top_of(browser, page, shot=None) -> tuple:
    """(page report, the banner as rendered, rows of the quarantine-codes table or None)."""
    report = browser.load(
        page, screenshot=shot, timeout=CHROMIUM_TIMEOUT, extra={**XSS_PROBE, "banner": BANNER_JS, "codes": CODES_JS}
    )
    return report, json.loads(report.values["banner"]), json.loads(report.values["codes"])


# ------------------------------------------------------------------------------------------------ tests
def test_synthetic_sample_data_is_unmistakable_on_every_page_in_chromium(fresh_db, tmp_path, browser):
    create_marts(fresh_db, sample_marts(CLUSTERS))
    synthetic_run(fresh_db, outcome="completed_with_quarantine")
    out = tmp_path / "dashboard"
    index = build_dashboard(fresh_db, out)

    for page in [index] + [out / page_name(c) for c in CLUSTERS]:
        report, top, codes = top_of(browser, page, shot=tmp_path / f"{page.stem}.png")
        assert_page_ok(report, min_charts=3)
        assert top["first"] and top["visible"] and top["top"] == 0, top  # the first thing on the page, in view
        assert top["origin"] == "synthetic"
        text = top["text"]
        assert text.splitlines()[0] == SYNTHETIC_LABEL.upper()  # shown in capitals
        assert "bundled with ss4gl" in text and "not Eurostat data" in text
        assert f"Data as of {DATE}" in text and "finished 2026-11-27 01:47 UTC" in text
        assert "Last run: completed with 2 quarantined batches" in text
        assert top["title"].startswith("[SYNTHETIC DATA]")
        assert SYNTHETIC_LABEL in top["body"]  # the footer says it again (in the banner it is in capitals)
        if page == index:
            # open quarantines by problem code: batches and error records, warnings left out
            assert codes == [
                ["surveys", "unknown_nuts3", "1", "2", "2026-11-27 01:47 UTC"],
                ["surveys", "missing_value", "1", "1", "2026-11-27 01:47 UTC"],
                ["surveys", "wrong_depth", "1", "1", "2026-11-27 01:47 UTC"],
            ], codes
            assert "Freshness per source" in top["body"]
        else:
            assert codes is None  # the overview's
    html = "".join(p.read_text(encoding="utf-8") for p in out.glob("*.html"))
    for private in ("Müller", "row 2", "/srv/inbox", "127.0.0.1", "bad.csv: row"):
        assert private not in html, private


def test_live_sources_never_get_the_synthetic_label(fresh_db, tmp_path, browser):
    create_marts(fresh_db, sample_marts(CLUSTERS))
    live_run(fresh_db, outcome="success")
    out = tmp_path / "dashboard"
    index = build_dashboard(fresh_db, out)
    for page in [index] + [out / page_name(c) for c in CLUSTERS]:
        report, top, _ = top_of(browser, page)
        assert_page_ok(report, min_charts=3)
        assert top["first"] and top["visible"] and top["origin"] == "live", top
        assert top["text"].splitlines()[0] == "Live sources"
        assert "received from the Eurostat API" in top["text"] and "from the survey inbox" in top["text"]
        assert f"Data as of {DATE}" in top["text"] and "Last run: success" in top["text"]
        assert "synthetic" not in top["body"].lower() and "SYNTHETIC" not in top["title"]
    for page in out.glob("*.html"):
        assert SYNTHETIC_LABEL not in page.read_text(encoding="utf-8")


def build_text(url, tmp_path) -> str:
    index = build_dashboard(url, tmp_path / "site")
    html = index.read_text(encoding="utf-8")
    return html[html.index('<div id="provenance"') : html.index("</div>", html.index('<div id="provenance"'))]


def test_one_synthetic_source_among_live_ones_still_says_so(fresh_db, tmp_path):
    """Eurostat live, but a bundled sample file dropped into the survey inbox: not all figures are real."""
    create_marts(fresh_db, None)
    record_run(fresh_db, eurostat_url=EUROSTAT, survey=("/data/inbox/epsi/sme_needs/x.xlsx", SAMPLE_FILE.read_bytes()))
    banner = build_text(fresh_db, tmp_path)
    assert 'data-origin="mixed"' in banner and MIXED_LABEL in banner
    assert "Eurostat: 1 file received from the Eurostat API" in banner
    assert "Surveys: 1 file from the bundled synthetic samples" in banner


def test_a_replay_of_the_bundled_samples_elsewhere_is_recognised_by_its_table_of_contents(fresh_db, tmp_path):
    """A replay on another host (a container): its table of contents is the bundled toc.txt, byte for byte."""
    create_marts(fresh_db, None)
    record_run(
        fresh_db,
        eurostat_url="http://eurostat-replay:8080",
        toc=(SAMPLES_DIR / "eurostat" / "toc.txt").read_bytes(),
        survey=("s3://ss4gl-inbox/epsi/sme_needs/results-2026.csv", b"respondent;nuts3\n1;BE100\n"),
    )
    banner = build_text(fresh_db, tmp_path)
    assert 'data-origin="mixed"' in banner and MIXED_LABEL in banner
    assert "Eurostat: 1 file from the bundled synthetic samples" in banner
    assert "Surveys: 1 file from the survey inbox" in banner


def test_a_failed_run_and_a_run_still_going_are_said_so(fresh_db, tmp_path):
    create_marts(fresh_db, None)
    live_run(fresh_db, outcome="failed")
    banner = build_text(fresh_db, tmp_path)
    assert f'Data as of <strong class="as-of">{DATE}</strong>' in banner
    assert 'Last run: <strong class="run-state bad">FAILED (1 failed task)</strong>' in banner

    # The pipeline builds the dashboard before it writes its summary: the next night's run, unfinished, is newer.
    conn = psycopg2.connect(fresh_db)
    with conn, conn.cursor() as cur:
        next_night = FINISHED + dt.timedelta(days=1)
        cur.execute(
            "insert into audit.run_batches (run_id, batch_id, source, object, sha256, logical_date, status,"
            " created_at, updated_at) values ('scheduled__2026-11-27', 'b9', 'surveys', 'epsi/x/y.csv', '{cc}',"
            " '2026-11-27', 'quarantined', %s, %s)",
            (next_night, next_night),
        )
        # a backfill replaying an earlier date afterwards is no newer nightly run
        cur.execute(
            "insert into audit.dataset_checks (run_id, logical_date, source, object, decision, reason, checked_at)"
            " values ('manual__bf', '2026-01-01', 'eurostat', 'nama_10r_2gdp', 'replay', 'replayed', %s)",
            (next_night + dt.timedelta(hours=1),),
        )
    conn.close()
    banner = build_text(fresh_db, tmp_path)
    assert 'Data as of <strong class="as-of">2026-11-27</strong>' in banner
    assert "unfinished when this page was built (running, or stopped before its summary; 1 batch quarantined" in banner
    assert f'previous run {DATE}: <span class="bad">FAILED (1 failed task)</span>' in banner


def test_nothing_recorded_is_no_origin_and_no_run(fresh_db, tmp_path):
    create_marts(fresh_db, sample_marts(["indescat"]))  # marts without any audit record behind them
    banner = build_text(fresh_db, tmp_path)
    assert 'data-origin="unknown"' in banner and "treat the figures as unverified" in banner
    assert "No pipeline run recorded yet" in banner


def test_bi_reader_reads_the_dashboard_views_and_still_no_audit_table(fresh_db):
    live_run(fresh_db)
    conn = connect(fresh_db, role=READER)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            for view in ("run", "provenance", "quarantine_codes", "eurostat_freshness", "survey_freshness"):
                cur.execute(f"select count(*) from audit.dashboard_{view}")  # noqa: S608 - fixed names
                assert cur.fetchone()[0] > 0, view
            for table in ("audit.fetches", "audit.batch_receipts", "audit.run_summaries", "raw.eurostat_observations"):
                with pytest.raises(psycopg2.errors.InsufficientPrivilege):
                    cur.execute(f"select count(*) from {table}")  # noqa: S608 - fixed names
    finally:
        conn.close()


def test_an_sdmx_providers_file_is_not_called_eurostat_data(fresh_db, tmp_path):
    """SDMX datasets load under the statistics source, but their files came from other providers' web services."""
    create_marts(fresh_db, None)
    record_run(fresh_db, eurostat_url=EUROSTAT, survey=("/data/inbox/epsi/sme_needs/x.csv", b"respondent;nuts3\n"))
    body = b"DATAFLOW,REF_AREA,TIME_PERIOD,OBS_VALUE\r\nECB:EXR(1.0),U2,2024,1.08\r\n"
    with psycopg2.connect(fresh_db) as conn, conn.cursor() as cur:
        cur.execute(
            "insert into audit.fetches (run_id, logical_date, source, object, url, http_status, sha256, size_bytes)"
            " values ('r-sdmx', %s, 'eurostat', 'ecb_exr', 'https://data-api.ecb.europa.eu/service/data/EXR/A.USD',"
            " 200, %s, %s)",
            (DATE, sha(body), len(body)),
        )
        cur.execute(
            "insert into audit.batches (batch_id, source, object, sha256, run_id, logical_date, status, meta)"
            " values ('eurostat:ecb_exr:1', 'eurostat', 'ecb_exr', %s, 'r-sdmx', %s, 'loaded', %s)",
            ([sha(body)], DATE, json.dumps({"sdmx": {"geo": "ref_area"}})),
        )
    conn.close()
    banner = build_text(fresh_db, tmp_path)
    assert 'data-origin="live"' in banner
    assert "Eurostat: 1 file received from the Eurostat API" in banner  # the Eurostat file alone
    assert "SDMX providers: 1 file received from the providers" in banner


def test_a_warehouse_not_yet_migrated_to_0013_still_shows_the_origin(fresh_db, tmp_path):
    """The dashboard runs as bi_reader and never migrates: the view as 0010 defined it (no `sdmx` column) still
    gives the banner."""
    from ingest.warehouse import migrations

    create_marts(fresh_db, None)
    record_run(fresh_db, eurostat_url=EUROSTAT, survey=("/data/inbox/epsi/sme_needs/x.csv", b"respondent;nuts3\n"))
    (v0010,) = [p for p in migrations() if p.name.startswith("0010")]
    sql_text = v0010.read_text(encoding="utf-8")
    start = sql_text.index("create or replace view audit.dashboard_provenance")
    view = sql_text[start : sql_text.index(";", sql_text.index("group by b.source, s.sha256", start)) + 1]
    with psycopg2.connect(fresh_db) as conn, conn.cursor() as cur:
        cur.execute("drop view audit.dashboard_provenance")
        cur.execute(view)
        cur.execute("grant select on audit.dashboard_provenance to bi_reader")
    conn.close()
    banner = build_text(fresh_db, tmp_path)
    assert 'data-origin="live"' in banner and "Eurostat: 1 file received from the Eurostat API" in banner
