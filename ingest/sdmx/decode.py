"""What an SDMX body is, and its long table (:func:`decode_sdmx`)."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from ingest.sdmx.errors import SdmxError
from ingest.sdmx.structure import Dsd

FORMATS = ("sdmx-csv", "sdmx-ml", "sdmx-json")


def sniff(body: bytes) -> str:
    """``sdmx-csv``, ``sdmx-ml`` or ``sdmx-json`` from the first bytes; anything else: one line saying what it is."""
    head = body[:4096].lstrip(b"\xef\xbb\xbf \t\r\n")
    if not head:
        raise SdmxError("empty body")
    if head.startswith(b"<"):
        if b"<html" in head[:200].lower() or b"<!doctype html" in head[:200].lower():
            raise SdmxError("an HTML page, not SDMX data")
        return "sdmx-ml"
    if head.startswith((b"{", b"[")):
        return "sdmx-json"
    first = head.split(b"\n", 1)[0].upper()
    if first.startswith((b"DATAFLOW", b'"DATAFLOW', b"STRUCTURE", b'"STRUCTURE')) and b"," in first:
        return "sdmx-csv"
    raise SdmxError("not SDMX data (neither SDMX-ML, SDMX-JSON nor SDMX-CSV)")


def decode_sdmx(body: bytes, dsd: Dsd | None = None, dataset: str | None = None) -> pd.DataFrame:
    """The long table of an SDMX data message (see :mod:`ingest.sdmx.table`). ``dsd`` orders and selects the
    dimensions (needed to tell dimensions from attributes in structure-specific messages); ``dataset`` names the
    table, else the dataflow the message names."""
    kind = sniff(body)
    try:
        return _decode(kind, body, dsd, dataset)
    except SdmxError:
        raise
    except (KeyError, IndexError, TypeError, AttributeError, ValueError, ArithmeticError) as exc:
        # a message of the right syntax but not of the shape SDMX gives it (pyarrow's errors are ValueErrors)
        raise SdmxError(f"malformed {kind} message ({type(exc).__name__}: {exc})") from None


def _decode(kind: str, body: bytes, dsd: Dsd | None, dataset: str | None) -> pd.DataFrame:
    if kind == "sdmx-csv":
        from ingest.sdmx.read_csv import read_csv

        return read_csv(body, dsd, dataset)
    if kind == "sdmx-ml":
        from ingest.sdmx.read_xml import read_xml

        obs, named = read_xml(body, dsd)
        order = dsd.key_order if dsd else None
    else:
        from ingest.sdmx.read_json import read_json

        obs, named, order = read_json(body)
    return obs.frame(dataset or named, order)


def read_body(path: Path) -> bytes:
    """A message file's bytes, gunzipped when gzip, within ``catalogue.yml`` ``sources.sdmx`` limits (the file
    before it is read, the expansion while it is decompressed): past one, an SdmxError saying which."""
    from ingest.config import load_catalogue
    from ingest.eurostat.envelope import gunzip
    from ingest.eurostat.errors import EurostatPayloadError

    limits = load_catalogue().limits("sdmx")
    size = path.stat().st_size
    if size > limits["max_body_bytes"]:
        raise SdmxError(f"{size:,} bytes: beyond the {int(limits['max_body_bytes']):,} bytes an SDMX message may have")
    body = path.read_bytes()
    if body[:2] == b"\x1f\x8b":
        try:
            body = gunzip(
                body, max_bytes=int(limits["max_decompressed_bytes"]), max_ratio=float(limits["max_compression_ratio"])
            )
        except EurostatPayloadError as exc:
            raise SdmxError(exc.problem) from None
    return body


_XML_HEADER = re.compile(rb"<(?:[A-Za-z_][\w.-]*:)?Header\b.*?</(?:[A-Za-z_][\w.-]*:)?Header\s*>", re.S)


def content_digest(body: bytes) -> str:
    """sha256 of a data message without its header: SDMX-ML and SDMX-JSON messages carry a message id and a
    ``Prepared`` time that change with every request, so two answers with the same observations differ in bytes.
    SDMX-CSV has no header: the bytes themselves."""
    import hashlib

    head = body[:4096].lstrip(b"\xef\xbb\xbf \t\r\n")
    if head.startswith(b"<"):
        match = _XML_HEADER.search(body, 0, 1 << 20)  # the header comes first, within the first megabyte
        if match:
            body = body[: match.start()] + body[match.end() :]
    elif head.startswith(b"{"):
        import orjson

        try:
            doc = orjson.loads(body)
        except orjson.JSONDecodeError:
            pass
        else:
            if isinstance(doc, dict):
                body = orjson.dumps({k: v for k, v in doc.items() if k not in ("header", "meta")})
    return hashlib.sha256(body).hexdigest()
