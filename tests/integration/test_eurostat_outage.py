"""An Eurostat outage never keeps the SDMX datasets of other providers from loading (one source's failure blocks no
other): real loopback HTTP (Eurostat's table of contents answering 503), real Postgres."""

from __future__ import annotations

import pytest
import yaml

from ingest.config import CATALOGUE_PATH
from tests.conftest import query
from tests.integration._support import isolated_stage
from tests.integration.test_sdmx_stage import DATASETS, routes
from tests.sdmx.provider import Provider


def test_an_eurostat_outage_skips_eurostat_only_and_the_sdmx_datasets_are_still_fetched(warehouse_url, tmp_path):
    """Eurostat's table of contents answers 503 past the client's retries: before the task's last try the plan
    fails (Airflow retries it); on the last try every Eurostat dataset is checked `error` with the reason, one alert
    line is given, and the SDMX datasets of other providers are planned as on any night."""
    from ingest.eurostat.errors import EurostatUnavailable

    provider = Provider({**routes(), "/rest/catalogue/toc/txt": (503, "text/html", b"<html>503</html>")})
    cat = yaml.safe_load(CATALOGUE_PATH.read_text(encoding="utf-8"))
    cat["sources"]["sdmx"]["providers"]["test"] = {"base_url": provider.base_url}
    cat["sdmx_datasets"] = DATASETS[:1]
    catalogue = tmp_path / "catalogue.yml"
    catalogue.write_text(yaml.safe_dump(cat, sort_keys=False), encoding="utf-8")
    try:
        with isolated_stage(
            warehouse_url,
            tmp_path,
            SS4GL_CATALOGUE=str(catalogue),
            EUROSTAT_BASE_URL=provider.base_url,
            EUROSTAT_BACKOFF_SCALE="0.001",
        ) as st:
            from ingest.tasks import eurostat as stats
            from ingest.tasks.common import RunContext

            ctx = RunContext(run_id="test_toc_outage", logical_date="2026-11-28")
            with pytest.raises(EurostatUnavailable, match="HTTP 503"):
                stats.plan(ctx, last_try=False)
            alerts: list[str] = []
            assert stats.plan(ctx, alert=alerts.append) == ["test_sport_emp"]
            checks = query(
                st.url,
                "select object, decision, reason from audit.dataset_checks where run_id = %s order by object",
                ctx.run_id,
            )
            from ingest.tasks import publish
            from ingest.warehouse import LOADER, connect

            with connect(role=LOADER) as conn, conn.cursor() as cur:
                summary = {**publish.collect(cur, ctx), "failed_tasks": []}
            conn.close()
    finally:
        provider.close()
    eurostat = [c for c in checks if c[0] != "test_sport_emp"]
    assert len(eurostat) == len(cat["eurostat_datasets"]) > 0
    assert all(d == "error" and "table of contents unreachable" in r and "HTTP 503" in r for _, d, r in eurostat)
    assert ("test_sport_emp", "fetch") in {(o, d) for o, d, _ in checks}
    assert len(alerts) == 1 and alerts[0].startswith("eurostat table of contents unreachable (Eurostat is unreachable")
    assert "\n" not in alerts[0]
    # a pipeline problem: the run fails (red), though the other sources loaded and the marts were built
    assert publish.unreachable(summary) == ["eurostat"] and publish.outcome(summary) == "failed"
