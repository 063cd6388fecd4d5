"""Shared plumbing of the integration tests: an isolated warehouse database + state folder per module,
a temp survey inbox built from the bundled samples, and small SQL helpers. No mocks: everything these
helpers set up is what the pipeline stages use in production (env vars, folders, a real Postgres database)."""

from __future__ import annotations

import contextlib
import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from ingest.config import SAMPLES_DIR
from tests.conftest import create_database, drop_database, query

SAMPLE_INBOX = SAMPLES_DIR / "inbox"
SURVEY_TABLES = (
    "survey_sme_respondents",
    "survey_sme_service_ratings",
    "survey_sme_interests",
    "survey_sme_offers_needs",
    "survey_soa_profile",
    "survey_soa_kpis",
    "survey_soa_goals",
    "survey_soa_figures",
    "survey_soa_swot",
    "survey_soa_practices",
)


@dataclass
class Stage:
    url: str
    home: Path
    tmp: Path


@contextlib.contextmanager
def isolated_stage(server_url: str, tmp: Path, **env: str) -> Iterator[Stage]:
    """A new migrated database (WAREHOUSE_URL) and a new state folder (SS4GL_HOME) for one test module."""
    url = create_database(server_url)
    home = tmp / "state"
    mp = pytest.MonkeyPatch()
    mp.setenv("WAREHOUSE_URL", url)
    mp.setenv("SS4GL_HOME", str(home))
    for k, v in env.items():
        mp.setenv(k, v)
    try:
        yield Stage(url, home, tmp)
    finally:
        mp.undo()
        drop_database(server_url, url)


def copy_sample_inbox(dest: Path, skip: tuple[str, ...] = ()) -> list[Path]:
    """Copy every bundled sample survey file to ``dest/<cluster>/<instrument>/<file>``; return the copies."""
    out = []
    for src in sorted(SAMPLE_INBOX.rglob("*")):
        rel = src.relative_to(SAMPLE_INBOX)
        if not src.is_file() or len(rel.parts) != 3 or rel.as_posix() in skip:
            continue
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, target)
        out.append(target)
    return out


def drop(inbox: Path, rel: str, data: bytes) -> Path:
    """Land a file in the inbox at ``<cluster>/<instrument>/<file>``."""
    path = inbox / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def reason_beside(path: Path) -> dict:
    """The machine-readable ``<file>.quarantine.json`` written beside a quarantined inbox file."""
    side = path.with_name(path.name + ".quarantine.json")
    assert side.is_file(), f"no quarantine reason beside {path}"
    return json.loads(side.read_text(encoding="utf-8"))


def batch_of(url: str, source: str, obj: str) -> dict:
    rows = query(
        url,
        "select batch_id, status, reason, rows_parsed, rows_loaded, sha256 from audit.batches"
        " where source = %s and object = %s order by updated_at desc",
        source,
        obj,
    )
    assert rows, f"no batch for {source} {obj}"
    b = rows[0]
    return {
        "batch_id": b[0],
        "status": b[1],
        "reason": b[2],
        "rows_parsed": b[3],
        "rows_loaded": b[4],
        "sha256": list(b[5]),
    }


def quarantine_rows(url: str, batch_id: str) -> list[dict]:
    rows = query(
        url,
        "select code, severity, message, file, row_number, column_name, expected, found from audit.quarantine"
        " where batch_id = %s order by severity, code",
        batch_id,
    )
    keys = ("code", "severity", "message", "file", "row", "column", "expected", "found")
    return [dict(zip(keys, r, strict=True)) for r in rows]


def survey_rows_for(url: str, sha: str) -> dict[str, int]:
    """Rows of every raw survey table that came from the file with this content hash."""
    out = {}
    for t in SURVEY_TABLES:
        out[t] = query(url, f"select count(*) from raw.{t} where file_sha256 = %s", sha)[0][0]  # noqa: S608
    return out
