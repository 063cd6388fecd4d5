"""Kobo JSON reading: a record list (or an object holding one) -> one raw section of flattened records."""

from __future__ import annotations

import json
from typing import Any

import orjson

from ingest.surveys.parsing.raw import FileRejected, Limits, RawRecord, RawSection, over_limit
from ingest.surveys.privacy import known
from ingest.surveys.problems import Problems
from ingest.surveys.spec import Codebook


def _json_depth(obj: Any, limit: int) -> int:
    """Nesting depth of a parsed JSON value (a scalar is 0), counted without recursion; stops past ``limit``."""
    deepest, stack = 0, [(obj, 1)] if isinstance(obj, (dict, list)) else []
    while stack:
        value, depth = stack.pop()
        deepest = max(deepest, depth)
        if depth > limit:
            break
        children = value.values() if isinstance(value, dict) else value
        stack.extend((c, depth + 1) for c in children if isinstance(c, (dict, list)))
    return deepest


def _flatten(obj: dict, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in obj.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flatten(v, key + "/"))
        else:
            out[key] = v
    return out


def json_records(data: bytes, cb: Codebook, pr: Problems, limits: Limits | None = None) -> RawSection:
    """Records numbered from 1, nested objects flattened to ``a/b`` keys, lists joined by spaces; JSON that is
    not UTF-8, invalid, holds no record list or goes beyond the limits (depth, records, cells) is a file error."""
    limits = limits or Limits.of()
    try:
        obj = orjson.loads(data.decode("utf-8-sig"))  # orjson: no recursion; refuses depth > 1024 itself
    except UnicodeDecodeError as exc:
        pr.error(
            "encoding",
            f"JSON is not UTF-8 (byte 0x{data[exc.start]:02x} at offset {exc.start})",
            row=data[: exc.start].count(b"\n") + 1,
            expected="utf-8",
            found=known(f"0x{data[exc.start]:02x}"),
        )
        raise FileRejected from exc
    except json.JSONDecodeError as exc:  # orjson.JSONDecodeError is one
        if "depth" in exc.msg or "recursion" in exc.msg:
            over_limit(
                pr,
                "json_too_deep",
                "JSON nests deeper than the configured limit",
                row=exc.lineno,
                column=f"char {exc.colno}",
                expected=f"<= {limits.json_depth} levels",
                found=known(f"> {limits.json_depth} levels"),
            )
        pr.error(
            "invalid_json",
            f"invalid JSON: {exc.msg}",
            row=exc.lineno,
            column=f"char {exc.colno}",
            expected="a JSON list of records or an object with a record list",
            found=known(exc.msg),
        )
        raise FileRejected from exc
    depth = _json_depth(obj, limits.json_depth)
    if depth > limits.json_depth:
        over_limit(
            pr,
            "json_too_deep",
            "JSON nests deeper than the configured limit",
            row=1,
            column="-",
            expected=f"<= {limits.json_depth} levels",
            found=known(f"> {limits.json_depth} levels"),
        )
    records = obj.get(cb.records or "results") if isinstance(obj, dict) else obj
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        pr.error(
            "invalid_json",
            "JSON holds no list of records",
            row=1,
            expected=f"a list of objects (or key {cb.records or 'results'!r})",
            found=known(type(records).__name__),
        )
        raise FileRejected
    if len(records) > limits.rows:
        over_limit(
            pr,
            "too_many_rows",
            "JSON has more records than the configured limit",
            row=1,
            column="-",
            expected=f"<= {limits.rows} records",
            found=known(f"{len(records)} records"),
        )
    headers: dict[str, None] = {}
    out = []
    cells = 0
    for i, rec in enumerate(records, start=1):
        flat = _flatten(rec)
        cells += len(flat)
        if cells > limits.cells:
            over_limit(
                pr,
                "too_many_cells",
                "JSON has more cells (records x fields) than the configured limit",
                row=i,
                column="-",
                expected=f"<= {limits.cells} cells",
                found=known(f"> {limits.cells} cells"),
            )
        headers.update(dict.fromkeys(flat))
        out.append(RawRecord(i, {k: (" ".join(map(str, v)) if isinstance(v, list) else v, i) for k, v in flat.items()}))
    return RawSection(list(headers), dict.fromkeys(headers, 1), out)
