"""A sixth cluster by configuration alone, in a second partnership (issue #21.2).

A partnership folder beside the product holds its catalogue (the bundled one plus a German sports cluster in DE11,
language de, with a strategy target) and its codebook (German LimeSurvey labels, extending the bundled base). The
sample generators make its survey files and Eurostat samples (SYNTHETIC) for that catalogue; then `ss4gl run` runs the
nightly from ``SS4GL_CATALOGUE`` into a database and state folder of its own, beside the session's warehouse, with the
Eurostat samples served over loopback HTTP. The new cluster is in every cluster-grained mart and on the dashboard,
the partnership's own statistics office dataset (an SDMX provider and dataset in its catalogue, served over loopback
HTTP) loads through the gate, and the bundled partnership beside it never sees either.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import psycopg2
import pytest
import yaml
from psycopg2 import sql

from ingest.config import SAMPLES_DIR, load_catalogue
from ingest.eurostat.replay import ReplayServer
from tests.conftest import create_database, drop_database, query
from tests.pipeline.test_nightly import mart_checksums
from tests.sdmx.provider import Provider
from tests.surveys.test_partnership_codebooks import CLUSTER, partnership
from tools import eurostat_samples, survey_samples

REPO = Path(__file__).resolve().parents[2]
DATE = "2026-11-26"
NEXT_DATE = "2026-11-27"
REN_PATH, REN_FILE = "/rest/data/ESTAT,NRG_IND_REN,1.0/all", "nrg_ind_ren.json"
NEW = CLUSTER["id"]
pytestmark = pytest.mark.timeout(1800)
SDMX_PATH = "/rest/data/STALA,SPORT_EMP,1.0/A..PS"
SDMX_BODY = (
    b"DATAFLOW,FREQ,REF_AREA,UNIT_MEASURE,TIME_PERIOD,OBS_VALUE,OBS_STATUS\r\n"
    b"STALA:SPORT_EMP(1.0),A,DE11,PS,2022,1234.5,A\r\n"
    b"STALA:SPORT_EMP(1.0),A,DE11,PS,2023,1301.25,P\r\n"
)  # SYNTHETIC


@pytest.fixture(scope="module")
def second_partnership(warehouse_url, tmp_path_factory):
    root = tmp_path_factory.mktemp("partnership")
    catalogue_path = partnership(root)
    provider = Provider({SDMX_PATH: (200, "application/vnd.sdmx.data+csv;version=1.0.0", SDMX_BODY)})
    cat = yaml.safe_load(catalogue_path.read_text(encoding="utf-8"))
    cat["strategy_targets"].append(
        {"cluster": NEW, "indicator": "GDP_EUR_HAB", "baseline_year": 2021, "baseline_value": 40000,
         "target_year": 2026, "target_value": 45000}
    )  # fmt: skip
    # A statistics office's dataset by configuration: a provider and a dataset entry, fetched over loopback HTTP.
    cat["sources"]["sdmx"]["providers"]["statistik_bw"] = {"base_url": provider.base_url}
    cat["sdmx_datasets"] = [
        {"code": "bw_sport_emp", "provider": "statistik_bw", "flow": "STALA,SPORT_EMP,1.0", "key": "A..PS",
         "theme": "sport", "title": "Employment in sport clubs (SYNTHETIC)"}
    ]  # fmt: skip
    catalogue_path.write_text(yaml.safe_dump(cat, allow_unicode=True, sort_keys=False), encoding="utf-8")
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
        # One of Eurostat's datasets comes from its SDMX endpoint instead, as SDMX-CSV: its indicator follows.
        provider.routes[REN_PATH] = (200, "application/vnd.sdmx.data+csv;version=1.0.0", sdmx_csv(samples / REN_FILE))
        cat["eurostat_datasets"] = [d for d in cat["eurostat_datasets"] if d["code"] != "nrg_ind_ren"]
        cat["sources"]["sdmx"]["providers"]["eurostat_sdmx"] = {"base_url": provider.base_url}
        cat["sdmx_datasets"].append(
            {"code": "nrg_ind_ren", "provider": "eurostat_sdmx", "flow": "ESTAT,NRG_IND_REN,1.0", "geo": "geo",
             "theme": "low_carbon", "title": "Share of energy from renewable sources"}
        )  # fmt: skip
        catalogue_path.write_text(yaml.safe_dump(cat, allow_unicode=True, sort_keys=False), encoding="utf-8")
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
        run = ss4gl_run(DATE, env)
        marts = mart_checksums(url)
        # The next night: a new survey file arrives, and the catalogue gained a target naming no known indicator.
        cat["strategy_targets"].append(
            {"cluster": NEW, "indicator": "NO_SUCH_INDICATOR", "baseline_year": 2021, "baseline_value": 1,
             "target_year": 2026, "target_value": 2}
        )  # fmt: skip
        broken = root / "catalogue-broken.yml"
        broken.write_text(yaml.safe_dump(cat, allow_unicode=True, sort_keys=False), encoding="utf-8")
        os.environ["SS4GL_CATALOGUE"] = str(broken)
        try:
            survey_samples.regenerate(
                inbox,
                (survey_samples.SampleSpec(NEW, "sme_needs", "sme_needs.limesurvey.de", 2024, 25, "umfrage_2024.csv"),),
            )
        finally:
            os.environ.pop("SS4GL_CATALOGUE")
            if saved is not None:
                os.environ["SS4GL_CATALOGUE"] = saved
        bad_night = ss4gl_run(NEXT_DATE, {**env, "SS4GL_CATALOGUE": str(broken)})
    provider.close()
    yield {"url": url, "home": home, "run": run, "marts": marts, "bad_night": bad_night, "samples": samples}
    drop_database(warehouse_url, url)


def sdmx_csv(jsonstat: Path) -> bytes:
    """A bundled-style JSON-stat sample rewritten as Eurostat's SDMX endpoint answers: SDMX-CSV 1.0, flags in
    OBS_FLAG (SYNTHETIC values, as the sample's)."""
    import csv
    import io

    from ingest.eurostat.decode import decode

    frame = decode(jsonstat.read_bytes(), "nrg_ind_ren")
    dims = ["freq", "nrg_bal", "unit", "geo"]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(["DATAFLOW", *(d.upper() for d in dims), "TIME_PERIOD", "OBS_VALUE", "OBS_FLAG"])
    for row in frame.itertuples(index=False):
        value = "" if row.value != row.value else repr(row.value)  # NaN: a status-only cell
        flag = "" if row.obs_status != row.obs_status else row.obs_status
        writer.writerow(["ESTAT:NRG_IND_REN(1.0)", *(getattr(row, d) for d in dims), row.time, value, flag])
    return out.getvalue().encode()


def ss4gl_run(date: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "ingest.cli", "run", "--date", date],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=1500,
        check=False,
    )


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


def test_its_statistics_office_dataset_loads_through_the_gate(second_partnership):
    url = second_partnership["url"]
    rows = query(url, "select geo, time, value::text from raw.eurostat_observations where dataset = 'bw_sport_emp'"
                      " order by time")  # fmt: skip
    assert rows == [("DE11", "2022", "1234.5"), ("DE11", "2023", "1301.25")]
    assert query(url, "select status from audit.batches where object = 'bw_sport_emp'") == [("loaded",)]
    staged = query(
        url,
        "select time_period, is_provisional from staging.stg_eurostat__observations where dataset = 'bw_sport_emp'"
        " order by 1",
    )  # in the statistics dbt reads: an indicator selects it by its code like a Eurostat one; SDMX P = provisional
    assert staged == [("2022", False), ("2023", True)]


def test_a_catalogue_with_problems_fails_one_task_intake_goes_on_and_the_marts_stay(second_partnership):
    night, url = second_partnership["bad_night"], second_partnership["url"]
    out = night.stdout + night.stderr
    assert night.returncode != 0 and "Traceback" not in night.stdout, out[-3000:]
    assert "load_partnership" in out and "NO_SUCH_INDICATOR" in out, out[-3000:]
    # intake went on: the new survey file is in raw
    assert query(url, "select count(distinct respondent_pid) from raw.survey_sme_respondents where cluster = %s"
                      " and wave = 2024", NEW) == [(25,)]  # fmt: skip
    # the last good configuration and the marts built from it stay
    assert query(
        url, "select count(*) from raw.partnership_strategy_targets where indicator_code = 'NO_SUCH_INDICATOR'"
    ) == [(0,)]
    assert mart_checksums(url) == second_partnership["marts"]


def test_an_indicator_comes_from_an_sdmx_dataset_like_from_a_eurostat_one(second_partnership):
    """REN_SHARE (national, from nrg_ind_ren) for the new cluster's country, fetched from Eurostat's SDMX endpoint."""
    from ingest.eurostat.decode import decode

    url = second_partnership["url"]
    assert query(url, "select status from audit.batches where object = 'nrg_ind_ren'") == [("loaded",)]
    sample = decode((second_partnership["samples"] / REN_FILE).read_bytes(), "nrg_ind_ren")
    de = sample[(sample.geo == "DE") & sample.value.notna()].sort_values("time").iloc[-1]
    got = query(
        url,
        "select value::float8 from marts.mart_partnership_indicators where cluster_id = %s"
        " and indicator_code = 'REN_SHARE' and year = %s",
        NEW,
        int(de.time),
    )
    assert got == [(de.value,)]
