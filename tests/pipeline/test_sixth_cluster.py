"""A sixth cluster by configuration alone, in a second partnership (issue #21.2).

A partnership folder beside the product holds its catalogue (the bundled one plus a German sports cluster in DE11,
language de, with a strategy target) and its codebook (German LimeSurvey labels, extending the bundled base). The
sample generators make its survey files and Eurostat samples (SYNTHETIC) for that catalogue; then `ss4gl run` runs the
nightly from ``SS4GL_CATALOGUE`` into a database and state folder of its own, beside the session's warehouse, with the
Eurostat samples served over loopback HTTP. The new cluster is in every cluster-grained mart and on the dashboard,
and the session's own database (the bundled partnership) never sees it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import psycopg2
import pytest
from psycopg2 import sql

from ingest.config import SAMPLES_DIR, load_catalogue
from ingest.eurostat.replay import ReplayServer
from tests.conftest import create_database, drop_database, query
from tests.surveys.test_partnership_codebooks import CLUSTER, partnership
from tools import eurostat_samples, survey_samples

REPO = Path(__file__).resolve().parents[2]
DATE = "2026-11-26"
NEW = CLUSTER["id"]
pytestmark = pytest.mark.timeout(1800)


@pytest.fixture(scope="module")
def second_partnership(warehouse_url, tmp_path_factory):
    root = tmp_path_factory.mktemp("partnership")
    catalogue_path = partnership(root)
    text = catalogue_path.read_text(encoding="utf-8")
    catalogue_path.write_text(
        text.replace(
            "strategy_targets:\n",
            f"strategy_targets:\n- {{cluster: {NEW}, indicator: GDP_EUR_HAB, baseline_year: 2021, "
            "baseline_value: 40000, target_year: 2026, target_value: 45000}\n",
            1,
        ),
        encoding="utf-8",
    )
    saved = os.environ.get("SS4GL_CATALOGUE")
    os.environ["SS4GL_CATALOGUE"] = str(catalogue_path)  # the generators read the partnership's catalogue
    try:
        inbox = root / "inbox"
        shutil.copytree(SAMPLES_DIR / "inbox", inbox, ignore=shutil.ignore_patterns("README.md"))
        survey_samples.regenerate(
            inbox,
            (
                survey_samples.SampleSpec(NEW, "sme_needs", "sme_needs.limesurvey.de", 2025, 40, "umfrage_2025.csv"),
                survey_samples.SampleSpec(
                    NEW, "state_of_affairs", "state_of_affairs.csv_long.en", 2025, 0, "state_of_affairs_2025.csv"
                ),
            ),
        )
        samples = root / "eurostat"
        samples.mkdir()
        for name, body in eurostat_samples.generate(load_catalogue(catalogue_path)).items():
            (samples / name).write_bytes(body)
    finally:
        if saved is None:
            os.environ.pop("SS4GL_CATALOGUE", None)
        else:
            os.environ["SS4GL_CATALOGUE"] = saved
    url = create_database(warehouse_url)
    home = root / "state"
    with ReplayServer(samples) as server:
        env = {
            **os.environ,
            "WAREHOUSE_URL": url,
            "SS4GL_HOME": str(home),
            "SS4GL_CATALOGUE": str(catalogue_path),
            "SURVEY_INBOX": str(inbox),
            "EUROSTAT_BASE_URL": server.base_url,
        }
        env.pop("OFFLINE", None)
        run = subprocess.run(
            [sys.executable, "-m", "ingest.cli", "run", "--date", DATE],
            capture_output=True,
            text=True,
            env=env,
            cwd=REPO,
            timeout=1500,
            check=False,
        )
    yield {"url": url, "home": home, "run": run}
    drop_database(warehouse_url, url)


def test_the_second_partnership_runs_green(second_partnership):
    run = second_partnership["run"]
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]


@pytest.mark.parametrize(
    ("mart", "where"),
    [
        ("mart_cluster_kpis", "cluster_id = %(c)s"),
        ("mart_partnership_indicators", "cluster_id = %(c)s"),
        ("mart_sme_needs", "cluster_id = %(c)s"),
        ("mart_matchmaking", "need_cluster_id = %(c)s"),
        ("mart_matchmaking", "offer_cluster_id = %(c)s"),
        ("mart_cluster_similarity", "%(c)s in (cluster_a, cluster_b)"),
        ("mart_region_benchmarks", "geo_code = 'DE11' and %(c)s = any(regexp_split_to_array(cluster_ids, '[, ]+'))"),
    ],
)
def test_the_new_cluster_is_in_every_cluster_grained_mart(second_partnership, mart, where):
    conn = psycopg2.connect(second_partnership["url"])
    try:
        with conn, conn.cursor() as cur:
            statement = sql.SQL("select count(*) from {} where ").format(sql.Identifier("marts", mart)) + sql.SQL(where)
            cur.execute(statement, {"c": NEW})
            assert cur.fetchone()[0] > 0, f"{NEW} not in marts.{mart} ({where})"
    finally:
        conn.close()


def test_its_regions_survey_figures_and_target_are_its_own(second_partnership):
    url = second_partnership["url"]
    assert query(url, "select nuts_code, nuts_version from reference.cluster_regions where cluster_id = %s", NEW) == [
        ("DE11", "2021")
    ]
    gdp = query(
        url,
        "select value, baseline_value, target_value from marts.mart_partnership_indicators"
        " where cluster_id = %s and indicator_code = 'GDP_EUR_HAB' and year = 2023",
        NEW,
    )
    assert len(gdp) == 1 and gdp[0][0] is not None and (gdp[0][1], gdp[0][2]) == (40000, 45000)
    respondents = query(
        url, "select count(distinct respondent_pid) from raw.survey_sme_respondents where cluster = %s", NEW
    )
    assert respondents == [(40,)]


def test_the_dashboard_shows_it(second_partnership):
    pages = list((second_partnership["home"] / "dashboard").rglob("*.html"))
    assert pages and any(CLUSTER["name"] in p.read_text(encoding="utf-8") for p in pages)


def test_the_bundled_partnership_beside_it_never_sees_it(second_partnership, warehouse_url):
    bundled = create_database(warehouse_url)  # on the same server, from the bundled catalogue
    try:
        ids = query(bundled, "select cluster_id from raw.partnership_clusters order by 1")
        assert [c for (c,) in ids] == sorted(c.id for c in load_catalogue().clusters) and (NEW,) not in ids
        assert (NEW,) in query(second_partnership["url"], "select cluster_id from raw.partnership_clusters")
    finally:
        drop_database(warehouse_url, bundled)
