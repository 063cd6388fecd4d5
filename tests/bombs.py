"""Crafted input bombs, built at run time in bounded memory, and a child-process probe of their cost.

Used by tests/surveys/test_bounded_inputs.py, tests/eurostat/test_bounded_bodies.py and bench/bench_bombs.py.
Highly compressible bodies are built without compressing gigabytes: one deflate block of a 1 MiB chunk is made
with a full flush (byte-aligned, no reference to earlier data) and repeated, so a 2 GiB gzip takes about a
second (the CRC is still computed over every byte) and the builder never holds more than the chunk.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import struct
import subprocess
import sys
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SAMPLE_XLSX = REPO / "ingest/samples/inbox/indescat/sme_needs/indescat_necesidades_pymes_2025.xlsx"
SAMPLE_CSV = REPO / "ingest/samples/inbox/epsi/sme_needs/results-survey771203.csv"
SHEET = "xl/worksheets/sheet1.xml"
CHUNK = 1 << 20
GIB = 1 << 30
MIB = 1 << 20


# ----------------------------------------------------------------------------------------------- deflate
def _flushed(data: bytes, final: bool = False) -> bytes:
    """Raw deflate of ``data`` as self-contained blocks (full flush: byte-aligned, no back-reference)."""
    co = zlib.compressobj(9, zlib.DEFLATED, -15)
    return co.compress(data) + co.flush(zlib.Z_FINISH if final else zlib.Z_FULL_FLUSH)


def _stream(parts: list[tuple[bytes, int]]) -> tuple[Iterator[bytes], int, int, int]:
    """Raw deflate stream of the (data, times) parts in a row: (pieces, crc32, uncompressed, compressed size)."""
    blocks = [(_flushed(data), times) for data, times in parts]
    end = _flushed(b"", final=True)
    crc = usize = 0
    for data, times in parts:
        for _ in range(times):
            crc = zlib.crc32(data, crc)
        usize += len(data) * times

    def pieces() -> Iterator[bytes]:
        for block, times in blocks:
            for _ in range(times):
                yield block
        yield end

    return pieces(), crc, usize, sum(len(b) * t for b, t in blocks) + len(end)


def gzip_bomb(path: Path, size: int = 2 * GIB, chunk: bytes = b"\0" * CHUNK) -> Path:
    """A gzip file of ``size`` bytes of zeros (whole chunks): ~2 MiB on disk for 2 GiB."""
    pieces, crc, usize, _ = _stream([(chunk, max(1, size // len(chunk)))])
    with open(path, "wb") as fh:
        fh.write(b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff")  # magic, deflate, no flags, mtime 0, xfl, OS
        for piece in pieces:
            fh.write(piece)
        fh.write(struct.pack("<II", crc, usize & 0xFFFFFFFF))
    return path


# ----------------------------------------------------------------------------------------------- xlsx
def _write_zip(path: Path, members: list[tuple[str, Iterator[bytes], int, int, int]]) -> Path:
    """A plain zip (deflate, no zip64: every size < 4 GiB) from (name, raw deflate pieces, crc, usize, csize)."""
    central = []
    with open(path, "wb") as fh:
        for name, pieces, crc, usize, csize in members:
            raw = name.encode()
            offset = fh.tell()
            fh.write(struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, 8, 0, 0x21, crc, csize, usize, len(raw), 0) + raw)
            for piece in pieces:
                fh.write(piece)
            central.append(
                struct.pack(
                    "<IHHHHHHIIIHHHHHII",
                    0x02014B50,
                    20,
                    20,
                    0,
                    8,
                    0,
                    0x21,
                    crc,
                    csize,
                    usize,
                    len(raw),
                    0,
                    0,
                    0,
                    0,
                    0,
                    offset,
                )
                + raw
            )
        start = fh.tell()
        for entry in central:
            fh.write(entry)
        fh.write(struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(central), len(central), fh.tell() - start, start, 0))
    return path


def _sample_members(replace: dict[str, bytes | tuple]) -> list:
    """The members of the bundled sample XLSX, some replaced (bytes, or a ready ``_stream``)."""
    out = []
    with zipfile.ZipFile(SAMPLE_XLSX) as zf:
        for info in zf.infolist():
            new = replace.get(info.filename, None)
            data = zf.read(info.filename) if new is None else new
            out.append((info.filename, *(_stream([(data, 1)]) if isinstance(data, bytes) else data)))
    return out


def declared_dimension_xlsx(path: Path, ref: str = "A1:XFD1048576") -> Path:
    """The bundled sample with its sheet claiming ``ref`` as dimension (same cells: a lying header)."""
    with zipfile.ZipFile(SAMPLE_XLSX) as zf:
        sheet = zf.read(SHEET)
    sheet = re.sub(rb'<dimension ref="[^"]*"', f'<dimension ref="{ref}"'.encode(), sheet, count=1)
    return _write_zip(path, _sample_members({SHEET: sheet}))


def wide_rows_xlsx(path: Path, rows: int = 400) -> Path:
    """A sheet declaring A1:XFD<rows> whose every row really has a cell in A and one in XFD (16384 columns):
    rows x columns = 6.5 M cells for 400 rows, from a few kB of zip."""
    body = "".join(
        f'<row r="{n}"><c r="A{n}" t="inlineStr"><is><t>x</t></is></c><c r="XFD{n}"><v>1</v></c></row>'
        for n in range(1, rows + 1)
    )
    sheet = (
        '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
        f'<dimension ref="A1:XFD{rows}"/><sheetData>{body}</sheetData></worksheet>'
    ).encode()
    return _write_zip(path, _sample_members({SHEET: sheet}))


def zip_bomb_xlsx(path: Path, size: int = GIB) -> Path:
    """The sample with a sheet XML member of ``size`` bytes of repetitive rows, ~1 MiB compressed."""
    head = b'<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>'
    row = b'<row><c t="inlineStr"><is><t>bomb</t></is></c></row>'
    chunk = row * (CHUNK // len(row))
    tail = b"</sheetData></worksheet>"
    member = _stream([(head, 1), (chunk, max(1, size // len(chunk))), (tail, 1)])
    return _write_zip(path, _sample_members({SHEET: member}))


# ----------------------------------------------------------------------------------------------- json / files
def deep_json(depth: int = 100_000) -> bytes:
    """``depth`` nested arrays: stdlib json recurses into a RecursionError on it."""
    return b"[" * depth + b"]" * depth


def oversized_inbox_file(path: Path, size: int) -> Path:
    """The bundled LimeSurvey CSV padded to ``size`` bytes (a sparse tail of zeros: cheap to make)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(SAMPLE_CSV, path)
    with open(path, "r+b") as fh:
        fh.truncate(size)
    return path


# ----------------------------------------------------------------------------------------------- probe
@dataclass
class Probe:
    reason: str
    message: str
    rss_mib: float
    seconds: float
    extra: dict


_PROBE = """
import json, sys, time
sys.path.insert(0, {repo!r})
{setup}
t0 = time.perf_counter()
{run}
# VmHWM: the peak RSS of this interpreter's memory (ru_maxrss would also count the parent's peak before exec)
hwm = next(int(ln.split()[1]) for ln in open("/proc/self/status") if ln.startswith("VmHWM:"))
out = {{"reason": reason, "message": message, "seconds": time.perf_counter() - t0, "extra": extra,
        "rss_mib": hwm / 1024}}
print("PROBE " + json.dumps(out))
"""

SURVEY_SETUP = """
from ingest.surveys.parse import parse_file
data = open({path!r}, "rb").read()
"""
SURVEY_RUN = """
r = parse_file(data, {name!r}, {cluster!r}, {instrument!r}, key=b"bomb-probe-key-0123456789")
codes = [p.code for p in r.errors]
reason = ",".join(codes) or "ok"
message = r.errors[0].message if r.errors else ""
extra = {{"rows": r.row_counts}}
"""
EUROSTAT_SETUP = """
from ingest.eurostat.errors import EurostatPayloadError
from ingest.eurostat.{module} import {func}
data = open({path!r}, "rb").read()
"""
EUROSTAT_RUN = """
extra = {{}}
try:
    {func}(data, "bomb")
    reason, message = "ok", ""
except EurostatPayloadError as exc:
    reason, message = exc.kind, exc.problem
"""
EXTRACT_SETUP = """
import ingest.tasks.surveys as surveys
from ingest.tasks.common import RunContext
from ingest.warehouse import ADMIN, connect, migrate
migrate()
"""
EXTRACT_RUN = """
ctx = RunContext("bomb-probe-" + str(time.time_ns()), "2026-11-28")
res = surveys.extract(ctx, inbox={inbox!r})
conn = connect(role=ADMIN)
with conn, conn.cursor() as cur:
    cur.execute("select q.code, q.message from audit.quarantine q join audit.batches b using (batch_id)"
                " where b.run_id = %s", (ctx.run_id,))
    problems = cur.fetchall()
    cur.execute("select size_bytes from audit.fetches where run_id = %s", (ctx.run_id,))
    sizes = [r[0] for r in cur.fetchall()]
conn.close()
reason = ",".join(code for code, _ in problems) or "ok"
message = problems[0][1] if problems else ""
extra = {{"result": res, "fetch_sizes": sizes}}
"""


def probe(setup: str, run: str, env: dict[str, str] | None = None, timeout: float = 600) -> Probe:
    """Run ``setup`` (imports, reading the input: not timed) then ``run`` in a fresh interpreter; return the
    reason it set and its peak RSS (VmHWM of the child, which includes the interpreter and imports)."""
    code = _PROBE.format(repo=str(REPO), setup=setup, run=run)
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO,
        env={**os.environ, **(env or {})},
    )
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("PROBE ")), None)
    if line is None:
        raise AssertionError(f"probe failed (exit {proc.returncode}): {proc.stderr[-3000:]}")
    out = json.loads(line[6:])
    return Probe(out["reason"], out["message"], out["rss_mib"], out["seconds"], out["extra"])


def probe_survey(path: Path, cluster: str, instrument: str, name: str | None = None) -> Probe:
    return probe(
        SURVEY_SETUP.format(path=str(path)),
        SURVEY_RUN.format(name=name or path.name, cluster=cluster, instrument=instrument),
    )


def probe_eurostat(path: Path, module: str = "decode", func: str = "decode") -> Probe:
    return probe(EUROSTAT_SETUP.format(path=str(path), module=module, func=func), EUROSTAT_RUN.format(func=func))


def probe_extract(inbox: Path, archive: Path) -> Probe:
    return probe(EXTRACT_SETUP, EXTRACT_RUN.format(inbox=str(inbox)), env={"SS4GL_ARCHIVE": str(archive)})
