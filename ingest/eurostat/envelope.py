"""Recognise what a Eurostat body is before decoding it: gzip, JSON-stat, an error body, an async envelope, HTML.

Light on purpose (no pandas / Arrow): the HTTP client checks every response with these helpers.
"""

from __future__ import annotations

import io
import re
import zlib
from collections.abc import Iterator
from typing import Any, BinaryIO

from ingest.eurostat.errors import EurostatPayloadError

_GZIP_MAGIC = b"\x1f\x8b"
_RATIO_FLOOR = 1 << 20  # the compression ratio is checked once the output is past this (small bodies vary)
_OUT_CHUNK = 1 << 20
_IN_CHUNK = 1 << 16  # compressed bytes read at a time
_GZIP_WBITS = 16 + zlib.MAX_WBITS  # a gzip header and trailer around a deflate stream


def gzip_limits() -> tuple[int, float]:
    """(max decompressed bytes, max compression ratio) of a body: ``catalogue.yml`` sources.eurostat."""
    from ingest.config import load_catalogue

    lim = load_catalogue().limits("eurostat")
    return int(lim["max_decompressed_bytes"]), float(lim["max_compression_ratio"])


def gunzip(
    payload: bytes, dataset: str | None = None, *, max_bytes: int | None = None, max_ratio: float | None = None
) -> bytes:
    """Decompress a gzip body (every member, as ``gzip.decompress``) without ever holding more than
    ``max_bytes`` of output, nor more than ``max_ratio`` times the compressed bytes read so far (once 1 MiB
    is out): past either, ``EurostatPayloadError(kind="too_large")``. Defaults: ``gzip_limits()``.
    The one way Eurostat bodies are decompressed (whole here, piece by piece in :func:`gunzip_blocks`). Truncated or
    corrupt gzip: ``kind="truncated"``."""
    if max_bytes is None or max_ratio is None:
        cfg_bytes, cfg_ratio = gzip_limits()
        max_bytes = cfg_bytes if max_bytes is None else max_bytes
        max_ratio = cfg_ratio if max_ratio is None else max_ratio
    blocks = gunzip_blocks(io.BytesIO(payload), dataset, max_bytes=max_bytes, max_ratio=max_ratio)
    return b"".join(blocks)


def gunzip_blocks(
    fileobj: BinaryIO, dataset: str | None, *, max_bytes: int, max_ratio: float, block_bytes: int = _OUT_CHUNK
) -> Iterator[bytes]:
    """A gzip stream's output about ``block_bytes`` at a time (every member), bounded as :func:`gunzip` says: past
    ``max_bytes`` of output, or ``max_ratio`` times the compressed bytes read so far (once 1 MiB is out),
    ``EurostatPayloadError(kind="too_large")``; truncated or corrupt (a member's CRC or length checked by zlib):
    ``kind="truncated"``. ``zlib`` directly rather than ``gzip.GzipFile``: the same checks, without GzipFile's
    Python-level CRC pass and buffering (a third less time on a bulk file)."""
    inflater, fed, read, total = zlib.decompressobj(_GZIP_WBITS), False, 0, 0
    pending, out, held, ended = b"", [], 0, False
    try:
        while True:
            if not pending and not ended:
                pending = fileobj.read(_IN_CHUNK)
                read += len(pending)
                ended = not pending
            if not fed:  # between members: zero padding is skipped (as gzip.GzipFile does)
                pending = pending.lstrip(b"\x00")
                if not pending:
                    if ended:
                        break
                    continue
            # at the input's end, output zlib still holds (the last call stopped at block_bytes) comes out here
            chunk = inflater.decompress(pending, block_bytes)
            if ended and not chunk and not inflater.eof:
                break
            fed = True
            pending = inflater.unconsumed_tail
            if inflater.eof:  # the member ended: what follows is the next member (or nothing)
                # (unused_data holds every byte fed past the member's end; unconsumed_tail then repeats them)
                pending, inflater, fed = inflater.unused_data, zlib.decompressobj(_GZIP_WBITS), False
            if not chunk:
                continue
            total += len(chunk)
            if total > max_bytes:
                raise EurostatPayloadError(dataset, f"gzip body expands beyond {max_bytes} bytes", kind="too_large")
            if total > _RATIO_FLOOR and total > max_ratio * read:
                raise EurostatPayloadError(
                    dataset,
                    f"gzip body expands beyond {max_ratio:g} times its compressed size ({total} bytes from {read})",
                    kind="too_large",
                )
            out.append(chunk)
            held += len(chunk)
            if held >= block_bytes:
                yield b"".join(out) if len(out) > 1 else out[0]
                out, held = [], 0
    except zlib.error as exc:
        raise EurostatPayloadError(dataset, f"truncated or corrupt gzip ({exc})", kind="truncated") from exc
    if fed:
        raise EurostatPayloadError(
            dataset, "truncated or corrupt gzip (the stream ends inside a member)", kind="truncated"
        )
    if out:
        yield b"".join(out)


def unwrap(payload: bytes, dataset: str | None = None) -> bytes:
    """Gunzip if needed and strip a BOM / leading whitespace; raise for empty or truncated bodies."""
    if not payload:
        raise EurostatPayloadError(dataset, "empty body", kind="empty")
    body = payload
    if body[:2] == _GZIP_MAGIC:
        body = gunzip(body, dataset)
    body = body.removeprefix(b"\xef\xbb\xbf").lstrip()
    if not body:
        raise EurostatPayloadError(dataset, "empty body", kind="empty")
    return body


def sniff(body: bytes) -> str:
    """Name the shape of an unwrapped body: json, xml, html, tsv, sdmx-csv or unknown."""
    head = body[:512].lower()
    first = body[:1]
    if first in (b"{", b"["):
        return "json"
    if first == b"<":
        return "html" if (b"<html" in head or b"<!doctype html" in head) else "xml"
    line = body.split(b"\n", 1)[0]
    if re.search(rb"\\time(?:_period)?\s*\t", line.lower()):  # SDMX 2.1 TSV; `geo\time`: the old bulk layout
        return "tsv"
    if line.lstrip(b'"').upper().startswith(b"DATAFLOW"):
        return "sdmx-csv"
    return "unknown"


def envelope_info(body: bytes) -> tuple[str | None, str | None]:
    """(id, status) of a SOAP async envelope (``syncResponse/queued`` or ``asyncResponse/status``)."""
    text = body[:20000].decode("utf-8", "replace")
    ident = re.search(r"<(?:\w+:)?(?:id|key)>\s*([^<\s]+)\s*</", text)
    status = re.search(r"<(?:\w+:)?status>\s*([A-Z_]+)\s*</", text)
    return (ident.group(1) if ident else None, status.group(1) if status else None)


def not_data_xml(body: bytes, dataset: str | None, kind: str) -> EurostatPayloadError:
    text = body[:4000].decode("utf-8", "replace")
    if kind == "html":
        title = re.search(r"<title[^>]*>(.*?)</title>", text, re.I | re.S)
        what = f"HTML page, not data (title: {title.group(1).strip()!r})" if title else "HTML page, not data"
        return EurostatPayloadError(dataset, what, kind="html")
    if "syncResponse" in text or "asyncResponse" in text:
        ident, status = envelope_info(body)
        return EurostatPayloadError(
            dataset, f"SDMX asynchronous envelope, not data (id {ident}, status {status})", kind="envelope"
        )
    fault = re.search(r"<(?:\w+:)?(?:faultstring|ErrorMessage|Text)[^>]*>(.*?)</", text, re.S)
    what = f"XML/SOAP fault: {fault.group(1).strip()}" if fault else "XML body, not data"
    return EurostatPayloadError(dataset, what, kind="error")


def check_json_doc(doc: Any, dataset: str | None) -> dict:
    """Raise for JSON that is not a JSON-stat dataset (error body, async warning, other shape)."""
    if not isinstance(doc, dict):
        raise EurostatPayloadError(dataset, "JSON is not a JSON-stat dataset", kind="unknown")
    if "error" in doc:
        errs = doc["error"] if isinstance(doc["error"], list) else [doc["error"]]
        parts, status = [], None
        for e in errs:
            if isinstance(e, dict):
                status = status or e.get("status")
                parts.append(f"{e.get('status', '?')}/{e.get('id', '?')} {e.get('label', '')}".strip())
            else:
                parts.append(str(e))
        raise EurostatPayloadError(dataset, "Eurostat error " + "; ".join(parts), kind="error", status=status)
    if "warning" in doc and "value" not in doc:
        w = doc["warning"] if isinstance(doc["warning"], dict) else {"label": doc["warning"]}
        status = w.get("status")
        kind = "async" if status == 413 or "ASYNCHRONOUS" in str(w.get("label", "")) else "warning"
        raise EurostatPayloadError(
            dataset, f"Eurostat warning {status}: {w.get('label', '')}", kind=kind, status=status
        )
    if not all(k in doc for k in ("id", "size", "dimension")):
        raise EurostatPayloadError(dataset, "JSON is not a JSON-stat dataset (no id/size/dimension)")
    return doc
