"""One stage-level survey run shared by the integration modules (GX on ~20 files is the expensive part).

The temp inbox holds EVERY bundled sample file plus crafted bad files (one per defect), variants that must
load with warnings, misplaced files and a duplicate drop. The run is exactly what the nightly DAG does:
``surveys.extract`` -> ``gate.validate(..., surveys.prepare, on_quarantine=surveys.write_reason)`` ->
``gate.load``, then a second night over the same inbox. Logging (root, DEBUG) and stdout/stderr are captured
for the privacy checks.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from ingest.config import load_catalogue
from ingest.tasks import gate, surveys
from ingest.tasks.common import RunContext
from tests.integration._support import SAMPLE_INBOX, Stage, copy_sample_inbox, drop, isolated_stage
from tests.surveys.conftest import edit_csv, edit_json, edit_xlsx, sample_bytes, set_cell, spec_of
from tools.survey_samples import sample_people

DATE = "2026-11-26"
EPSI_FILE = "epsi/sme_needs/results-survey771203.csv"


def _epsi(fn, **kw) -> bytes:
    data, _ = sample_bytes("epsi", "sme_needs")
    return edit_csv(data, "utf-8", ",", fn, **kw)


def _all_rows(header: str, fn: Callable[[str], str]):
    def edit(rows):
        i = rows[0].index(header)
        for r in rows[1:]:
            r[i] = fn(r[i])

    return edit


def wrong_encoding() -> bytes:
    return _epsi(lambda rows: set_cell(rows, 3, "COMMENTS", "Très utile"), bom=False).decode("utf-8").encode("cp1252")


def wrong_delimiter() -> bytes:
    data, _ = sample_bytes("epsi", "sme_needs")
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")))
    buf = io.StringIO(newline="")
    csv.writer(buf, delimiter=";", lineterminator="\r\n").writerows(rows)
    return b"\xef\xbb\xbf" + buf.getvalue().encode()


def missing_nace() -> bytes:
    def fn(rows):
        i = rows[0].index("NACE")
        for r in rows:
            del r[i]

    return _epsi(fn)


def extra_column_wave_2024() -> bytes:
    def fn(rows):
        _all_rows("submitdate", lambda v: "2024" + v[4:])(rows)
        rows[0].append("Q99_NEW")
        for r in rows[1:]:
            r.append("x")

    return _epsi(fn)


def unknown_cluster() -> bytes:
    data, _ = sample_bytes("indescat", "sme_needs")

    def fn(wb):
        ws = wb["Respuestas"]
        ws.cell(row=4, column=[c.value for c in ws[1]].index("Clúster") + 1, value="Atlantis")

    return edit_xlsx(data, fn)


FORMULA = '=HYPERLINK("http://evil.invalid","clic")'


def formula_cells_wave_2023() -> bytes:
    data, _ = sample_bytes("indescat", "sme_needs")

    def fn(wb):
        ws = wb["Respuestas"]
        headers = [c.value for c in ws[1]]
        for r in range(2, ws.max_row + 1):
            ws.cell(row=r, column=headers.index("Año de la encuesta") + 1, value=2023)
        ws.cell(row=2, column=headers.index("Qué puede ofrecer (texto libre)") + 1, value=FORMULA)
        ws.cell(row=3, column=headers.index("Comentarios") + 1, value="@SUM(A1:A9)")

    return edit_xlsx(data, fn)


def unknown_service() -> bytes:
    data, _ = sample_bytes("mse_cluster", "sme_needs")
    return edit_json(data, lambda d: d["results"][2].__setitem__("szolgaltatasok/igenybe_vett", "b2b teleportacio"))


def header_only() -> bytes:
    data, _ = sample_bytes("epsi", "sme_needs")
    return data.split(b"\r\n")[0] + b"\r\n"


def corrupt_xlsx() -> bytes:
    data, _ = sample_bytes("indescat", "sme_needs")
    return data[: len(data) // 2]


def too_large() -> bytes:
    data, _ = sample_bytes("epsi", "sme_needs")
    limit = int(load_catalogue().sources["surveys"]["max_file_bytes"])
    return data + b"\r\n" * ((limit - len(data)) // 2 + 1)


def pii_in_echoed_cells() -> bytes:
    """Contact details of a sample respondent typed into code cells that a problem message echoes."""
    p = sample_people(spec_of("epsi", "sme_needs"))[0]
    return _epsi(
        lambda rows: (
            set_cell(rows, 1, "NUTS3", f"{p['contact_email']} {p['contact_phone']}"),
            set_cell(rows, 2, "NACE", p["contact_phone"]),
        )
    )


def _kobo_year(year: str) -> bytes:
    data, _ = sample_bytes("mse_cluster", "sme_needs")

    def fn(d):
        for r in d["results"]:
            r["_submission_time"] = year + r["_submission_time"][4:]

    return edit_json(data, fn)


# rel path -> (content, expected problem code). Quarantined by the parser (before GX).
PARSER_CASES: dict[str, tuple[Callable[[], bytes], str]] = {
    "epsi/sme_needs/wrong-encoding.csv": (wrong_encoding, "encoding"),
    "epsi/sme_needs/wrong-delimiter.csv": (wrong_delimiter, "wrong_delimiter"),
    "epsi/sme_needs/missing-nace.csv": (missing_nace, "missing_required_column"),
    "epsi/sme_needs/duplicate-respondent.csv": (
        lambda: _epsi(lambda rows: rows.append(list(rows[5]))),
        "duplicate_respondent",
    ),
    "epsi/sme_needs/likert-7.csv": (
        lambda: _epsi(lambda rows: set_cell(rows, 2, "IMP[digi]", "7")),
        "likert_out_of_range",
    ),
    "indescat/sme_needs/unknown-cluster.xlsx": (unknown_cluster, "unknown_cluster"),
    "epsi/sme_needs/unknown-nuts3.csv": (
        lambda: _epsi(lambda rows: set_cell(rows, 1, "NUTS3", "XX999")),
        "unknown_nuts3",
    ),
    "epsi/sme_needs/unknown-nace.csv": (lambda: _epsi(lambda rows: set_cell(rows, 1, "NACE", "99.99")), "unknown_nace"),
    "mse_cluster/sme_needs/unknown-service.json": (unknown_service, "unknown_service"),
    "epsi/sme_needs/empty.csv": (lambda: b"", "empty_file"),
    "epsi/sme_needs/header-only.csv": (header_only, "header_only"),
    "indescat/sme_needs/corrupt.xlsx": (corrupt_xlsx, "corrupt_xlsx"),
    "indescat/sme_needs/protected.xlsx": (
        lambda: b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 4096,
        "encrypted_xlsx",
    ),
    "epsi/sme_needs/pii-in-code-cells.csv": (pii_in_echoed_cells, "unknown_nuts3"),
}
# Quarantined at extract (the file cannot be attributed) or as a duplicate drop.
EXTRACT_CASES: dict[str, tuple[Callable[[], bytes], str]] = {
    "atlantis/sme_needs/results-survey771203.csv": (
        lambda: _epsi(lambda rows: set_cell(rows, 1, "COMMENTS", "atlantis")),
        "unknown_cluster_folder",
    ),
    "epsi/member_census/census.csv": (
        lambda: _epsi(lambda rows: set_cell(rows, 1, "COMMENTS", "census")),
        "unknown_instrument",
    ),
    "stray-upload.csv": (lambda: _epsi(lambda rows: set_cell(rows, 1, "COMMENTS", "stray")), "wrong_depth"),
    "epsi/sme_needs/results-survey771203_again.csv": (
        lambda: (SAMPLE_INBOX / EPSI_FILE).read_bytes(),
        "duplicate_file",
    ),
    # listed over max_file_bytes: never read into memory, archived by streaming, quarantined at extract
    "epsi/sme_needs/too-large.csv": (too_large, "file_too_large"),
}
# The parser accepts these (the wave is derived from a submission date without range check); GX does not.
GX_CASES: dict[str, tuple[Callable[[], bytes], str]] = {
    "epsi/sme_needs/results-survey771203-wave1999.csv": (
        lambda: _epsi(_all_rows("submitdate", lambda v: "1999" + v[4:])),
        "1999",
    ),
    "mse_cluster/sme_needs/kobo_igenyfelmeres_2150.json": (lambda: _kobo_year("2150"), "2150"),
}
# Load, with warnings recorded (their own wave, so they do not replace a sample's partition).
WARNING_CASES: dict[str, tuple[Callable[[], bytes], str]] = {
    "epsi/sme_needs/results-survey771203-extra-column.csv": (extra_column_wave_2024, "unknown_column"),
    "indescat/sme_needs/formula-cells-2023.xlsx": (formula_cells_wave_2023, "formula_like"),
}


@dataclass
class SurveyRun:
    stage: Stage
    inbox: Path
    sample_files: list[Path]
    extract: dict
    error: str
    load: dict
    second_extract: dict
    second_validate: dict
    log_text: str
    stdout: str
    files: dict[str, Path] = field(default_factory=dict)

    def rel(self, path: Path) -> str:
        return path.relative_to(self.inbox).as_posix()


@pytest.fixture(scope="session")
def survey_run(warehouse_url, tmp_path_factory) -> SurveyRun:
    tmp = tmp_path_factory.mktemp("surveys")
    inbox = tmp / "inbox"
    sample_files = copy_sample_inbox(inbox)
    (inbox / "README.md").write_text("landing inbox (ignored)\n")
    files = {}
    for cases in (PARSER_CASES, EXTRACT_CASES, GX_CASES, WARNING_CASES):
        for rel, (make, _) in cases.items():
            files[rel] = drop(inbox, rel, make())

    with isolated_stage(warehouse_url, tmp) as st:
        with capture_output() as cap:
            ctx = RunContext("it-surveys-1", DATE)
            extracted = surveys.extract(ctx, inbox=str(inbox))
            validated = gate.validate(ctx, surveys.SOURCE, surveys.prepare, on_quarantine=surveys.write_reason)
            loaded = gate.load(ctx, surveys.SOURCE, on_quarantine=surveys.write_reason)
            # The next night: the same files are still in the inbox (dropped again): nothing new is loaded.
            ctx2 = RunContext("it-surveys-2", "2026-11-27")
            second = surveys.extract(ctx2, inbox=str(inbox))
            second_validate = gate.validate(ctx2, surveys.SOURCE, surveys.prepare, on_quarantine=surveys.write_reason)
            gate.load(ctx2, surveys.SOURCE)
        yield SurveyRun(
            st,
            inbox,
            sample_files,
            extracted,
            validated["summary"],
            loaded,
            second,
            second_validate,
            cap["log"],
            cap["stdout"],
            files,
        )


@contextlib.contextmanager
def capture_output():
    """Everything logged (root logger, DEBUG) and printed (stdout/stderr) while the block runs."""
    records: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            try:
                records.append(self.format(record))
            except Exception:  # noqa: BLE001 - keep the raw message
                records.append(str(record.msg))

    handler = Collect(logging.DEBUG)
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    out, err = io.StringIO(), io.StringIO()
    result: dict[str, str] = {}
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            yield result
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
        result["log"] = "\n".join(records)
        result["stdout"] = out.getvalue() + err.getvalue()


def read_json(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))
