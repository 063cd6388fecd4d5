"""Benchmark ``ingest.sdmx.decode.decode_sdmx`` against the reference library sdmx1 (``read_sdmx`` + ``to_pandas``).

Usage (from the repo root)::

    .venv/bin/python bench/bench_sdmx.py [--series 200] [--periods 250] [--repeats 5] [--no-write]

Inputs: every real message of ``../shared/fixtures/sdmx`` that sdmx1 reads (skipped when that folder is absent),
and two synthetic messages generated here (labelled synthetic: ``--series`` × ``--periods`` observations with a
status on every tenth), one SDMX-ML 2.1 GenericData and one StructureSpecificData with its DSD. Both readers run in
this process on the same bytes (the DSD handed to both where a message needs one); time = median of ``--repeats``
runs after one warm-up. Ratio = sdmx1 / ours; target ≥ 20× (issue #21.4). Updates the "SDMX decode" section of
``bench/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import REPO, machine_note, now, write_section  # noqa: E402

HEADING = "## SDMX decode"
TARGET = 20.0
FIXTURES = [  # (file, DSD file or None)
    ("ecb_sdmxml21-generic_EXR_M.USD.EUR.SP00.A.xml", None),
    ("insee_sdmxml21-ss_SERIES_BDM.xml", None),
    ("istat_sdmxml21-ss_22_289.xml", "istat_sdmxml21-ss_22_289.dsd.xml"),
    ("estat_sdmxml21-ss_NRG_BAL_S.xml", None),
    ("oecd_sdmxjson10_PART2.json", None),
]
MSG = 'xmlns:message="http://www.sdmx.org/resources/sdmxml/schemas/v2_1/message"'
COMMON = 'xmlns:common="http://www.sdmx.org/resources/sdmxml/schemas/v2_1/common"'
STR = 'xmlns:structure="http://www.sdmx.org/resources/sdmxml/schemas/v2_1/structure"'
DIMS = ("FREQ", "REF_AREA", "INDICATOR", "UNIT")


def synthetic(series: int, periods: int) -> tuple[bytes, bytes, bytes]:
    """(generic message, structure-specific message, DSD): synthetic data of the shape of a provider's."""
    header = (
        "<message:Header><message:ID>SYNTHETIC</message:ID><message:Test>true</message:Test>"
        '<message:Prepared>2026-12-01T00:00:00</message:Prepared><message:Sender id="SYNTH"/>'
        '<message:Structure structureID="SYN" dimensionAtObservation="TIME_PERIOD">'
        "<common:Structure><URN>urn:sdmx:org.sdmx.infomodel.datastructure.DataStructure=SYN:DSD_SYN(1.0)</URN>"
        "</common:Structure></message:Structure></message:Header>"
    )
    keys = [("A", f"R{s % 50:02d}", f"IND{s // 50}", "EUR") for s in range(series)]
    generic, plain = [], []
    for key in keys:
        generic.append(
            "<generic:Series><generic:SeriesKey>"
            + "".join(f'<generic:Value id="{d}" value="{v}"/>' for d, v in zip(DIMS, key, strict=True))
            + "</generic:SeriesKey>"
        )
        plain.append("<Series " + " ".join(f'{d}="{v}"' for d, v in zip(DIMS, key, strict=True)) + ">")
        for p in range(periods):
            value, year = f"{(p * 7919 + len(generic)) % 100000 / 10:.1f}", 1800 + p
            status = (
                '<generic:Attributes><generic:Value id="OBS_STATUS" value="E"/></generic:Attributes>'
                if not (p % 10)
                else ""
            )
            generic.append(
                f'<generic:Obs><generic:ObsDimension value="{year}"/><generic:ObsValue value="{value}"/>{status}'
                "</generic:Obs>"
            )
            plain.append(
                f'<Obs TIME_PERIOD="{year}" OBS_VALUE="{value}"' + (' OBS_STATUS="E"' if not p % 10 else "") + "/>"
            )
        generic.append("</generic:Series>")
        plain.append("</Series>")
    g = (
        f'<?xml version="1.0" encoding="UTF-8"?><message:GenericData {MSG} {COMMON} '
        'xmlns:generic="http://www.sdmx.org/resources/sdmxml/schemas/v2_1/data/generic">'
        f'{header}<message:DataSet structureRef="SYN">{"".join(generic)}</message:DataSet></message:GenericData>'
    )
    ns = "urn:sdmx:org.sdmx.infomodel.datastructure.DataStructure=SYN:DSD_SYN(1.0):ObsLevelDim:TIME_PERIOD"
    ss = (
        f'<?xml version="1.0" encoding="UTF-8"?><message:StructureSpecificData {MSG} {COMMON} '
        f'xmlns:ss="http://www.sdmx.org/resources/sdmxml/schemas/v2_1/data/structurespecific" xmlns:ns1="{ns}" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
        + header.replace('structureID="SYN"', f'structureID="SYN" namespace="{ns}"')
        + '<message:DataSet ss:structureRef="SYN" xsi:type="ns1:DataSetType">'
        + "".join(plain)
        + "</message:DataSet></message:StructureSpecificData>"
    )
    dims = "".join(
        f'<structure:Dimension id="{d}" position="{i}"><structure:ConceptIdentity><Ref id="{d}" '
        'maintainableParentID="CS" maintainableParentVersion="1.0" agencyID="SYN" class="Concept" '
        'package="conceptscheme"/></structure:ConceptIdentity></structure:Dimension>'
        for i, d in enumerate(DIMS, start=1)
    )
    dsd = (
        f'<?xml version="1.0" encoding="UTF-8"?><message:Structure {MSG} {COMMON} {STR}><message:Header>'
        "<message:ID>SYNTHETIC</message:ID><message:Test>true</message:Test>"
        '<message:Prepared>2026-12-01T00:00:00</message:Prepared><message:Sender id="SYNTH"/></message:Header>'
        '<message:Structures><structure:DataStructures><structure:DataStructure id="DSD_SYN" agencyID="SYN" '
        'version="1.0"><structure:DataStructureComponents><structure:DimensionList id="DimensionDescriptor">'
        f'{dims}<structure:TimeDimension id="TIME_PERIOD" position="{len(DIMS) + 1}"><structure:ConceptIdentity>'
        '<Ref id="TIME_PERIOD" maintainableParentID="CS" maintainableParentVersion="1.0" agencyID="SYN" '
        'class="Concept" package="conceptscheme"/></structure:ConceptIdentity></structure:TimeDimension>'
        "</structure:DimensionList>"
        '<structure:AttributeList id="AttributeDescriptor"><structure:Attribute id="OBS_STATUS" '
        'assignmentStatus="Conditional"><structure:ConceptIdentity><Ref id="OBS_STATUS" maintainableParentID="CS" '
        'maintainableParentVersion="1.0" agencyID="SYN" class="Concept" package="conceptscheme"/>'
        "</structure:ConceptIdentity><structure:AttributeRelationship><structure:PrimaryMeasure>"
        '<Ref id="OBS_VALUE"/></structure:PrimaryMeasure></structure:AttributeRelationship></structure:Attribute>'
        "</structure:AttributeList>"
        '<structure:MeasureList id="MeasureDescriptor"><structure:PrimaryMeasure id="OBS_VALUE">'
        '<structure:ConceptIdentity><Ref id="OBS_VALUE" maintainableParentID="CS" maintainableParentVersion="1.0" '
        'agencyID="SYN" class="Concept" package="conceptscheme"/></structure:ConceptIdentity>'
        "</structure:PrimaryMeasure></structure:MeasureList>"
        "</structure:DataStructureComponents></structure:DataStructure>"
        "</structure:DataStructures></message:Structures></message:Structure>"
    )
    return g.encode(), ss.encode(), dsd.encode()


def median_seconds(fn, repeats: int) -> float:
    fn()  # warm-up (imports, caches)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--series", type=int, default=200)
    ap.add_argument("--periods", type=int, default=250)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()

    import sdmx

    from ingest.sdmx.decode import decode_sdmx
    from ingest.sdmx.structure import read_dsd

    warnings.simplefilter("ignore")
    cases: list[tuple[str, bytes, bytes | None]] = []
    fixtures = REPO.parent / "shared" / "fixtures" / "sdmx"
    if fixtures.is_dir():
        for name, dsd in FIXTURES:
            cases.append((name, (fixtures / name).read_bytes(), (fixtures / dsd).read_bytes() if dsd else None))
    generic, ss, dsd = synthetic(args.series, args.periods)
    n = args.series * args.periods
    cases += [
        (f"synthetic GenericData, {n:,} obs", generic, None),
        (f"synthetic StructureSpecificData, {n:,} obs", ss, dsd),
    ]

    lines = []
    ratios = []
    for name, body, dsd_body in cases:
        ours_dsd = read_dsd(dsd_body) if dsd_body else None
        ref_dsd = next(iter(sdmx.read_sdmx(io.BytesIO(dsd_body)).structure.values())) if dsd_body else None

        def ours(body=body, ours_dsd=ours_dsd):
            return decode_sdmx(body, ours_dsd)

        def reference(body=body, ref_dsd=ref_dsd):
            kw = {"structure": ref_dsd} if ref_dsd is not None else {}
            return sdmx.to_pandas(sdmx.read_sdmx(io.BytesIO(body), **kw))

        rows = len(ours())
        t_ours, t_ref = median_seconds(ours, args.repeats), median_seconds(reference, args.repeats)
        ratio = t_ref / t_ours
        ratios.append(ratio)
        lines.append(
            f"| {name} | {len(body):,} | {rows:,} | {t_ours * 1000:.1f} | {t_ref * 1000:.1f} | {rows / t_ours:,.0f} | "
            f"{rows / t_ref:,.0f} | **{ratio:.0f}×** |"
        )
        print(lines[-1], flush=True)
    worst = min(ratios)
    text = "\n".join(
        [
            HEADING,
            "",
            f"Run {now()} on {machine_note()}. Command:",
            "",
            "  .venv/bin/python bench/bench_sdmx.py",
            "",
            "Both readers in one process on the same bytes, time = median of "
            f"{args.repeats} runs after a warm-up: ours `ingest.sdmx.decode.decode_sdmx` (expat / Arrow, into the long "
            "table) vs sdmx1 `to_pandas(read_sdmx(...))` (the reference library). Real messages from "
            "`../shared/fixtures/sdmx` (those sdmx1 reads) and two synthetic ones generated by the benchmark.",
            "",
            "| message | bytes | observations | ours ms | sdmx1 ms | ours obs/s | sdmx1 obs/s | ratio |",
            "|---|---:|---:|---:|---:|---:|---:|---:|",
            *lines,
            "",
            f"- **slowest ratio {worst:.0f}×** (target ≥ {TARGET:.0f}×): **{'met' if worst >= TARGET else 'missed'}**.",
        ]
    )
    print(text)
    if not args.no_write:
        write_section(HEADING, text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
