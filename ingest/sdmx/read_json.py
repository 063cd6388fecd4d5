"""SDMX-JSON data messages, 1.0 (``dataSets`` + ``structure``) and 2.0 (``data.dataSets`` +
``data.structures``): dimensions at data-set, series and observation level (keys like ``"0:1"`` index each level's
values), observation arrays ``[value, attribute index, ...]`` whose attribute indexes follow the structure's
observation attributes that have values (extra trailing elements are ignored)."""

from __future__ import annotations

import re

import orjson

from ingest.sdmx.errors import SdmxError
from ingest.sdmx.table import CONF_IDS, STATUS_IDS, TIME_IDS, Observations

_DATAFLOW = re.compile(r"Dataflow=[^:]+:([^(]+)\(")


def _ids(component: dict) -> list:
    """Each value of a dimension or attribute: its code (``id``), else its plain ``value``."""
    out = [v.get("id", v.get("value")) if isinstance(v, dict) else v for v in component.get("values") or []]
    return [None if v is None else str(v) for v in out]


def _key(dims: list[dict], codes: list[list], key: str, where: str) -> dict[str, str]:
    parts = key.split(":") if key != "" else []
    if len(parts) != len(dims):
        raise SdmxError(f"{where} key {key!r} has {len(parts)} positions for {len(dims)} dimensions")
    out = {}
    for dim, values, part in zip(dims, codes, parts, strict=True):
        try:
            if not part.isdigit():
                raise ValueError
            out[dim["id"]] = values[int(part)]
        except (ValueError, IndexError):
            raise SdmxError(f"{where} key {key!r}: no value {part} of dimension {dim['id']}") from None
    return out


def read_json(body: bytes) -> tuple[Observations, str | None, list[str]]:
    """The observations of an SDMX-JSON data message, the dataflow id when named, and the dimensions' key order."""
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise SdmxError(f"not JSON ({exc})") from None
    if not isinstance(doc, dict):
        raise SdmxError("an SDMX-JSON message is a JSON object")
    data = doc.get("data") if isinstance(doc.get("data"), dict) else doc
    structure = (data.get("structures") or [None])[0] if "structures" in data else data.get("structure")
    datasets = data.get("dataSets")
    if not isinstance(structure, dict) or not isinstance(datasets, list):
        raise SdmxError("SDMX-JSON without dataSets and a structure")
    dims = {
        level: (structure.get("dimensions") or {}).get(level) or [] for level in ("dataSet", "series", "observation")
    }
    attrs = (structure.get("attributes") or {}).get("observation") or []
    codes = {level: [_ids(d) for d in dims[level]] for level in dims}
    fixed = {
        d["id"]: (values[0] if values else None) for d, values in zip(dims["dataSet"], codes["dataSet"], strict=True)
    }
    # An attribute without values takes no position in the observation arrays (OECD.Stat writes them so; sdmx1
    # reads them so).
    attrs = [a for a in attrs if a.get("values")]
    attr_ids = [a.get("id") for a in attrs]
    attr_values = [_ids(a) for a in attrs]
    time_ids = {d["id"] for d in dims["observation"] if d.get("role") in TIME_IDS or d["id"] in TIME_IDS}
    obs = Observations()

    def add(key: dict[str, str], cell, where: str) -> None:
        if not isinstance(cell, list) or not cell:
            raise SdmxError(f"{where}: an observation is an array [value, attribute indexes...]")
        found = {}
        for position, (attr_id, values) in enumerate(zip(attr_ids, attr_values, strict=True), start=1):
            index = cell[position] if position < len(cell) else None
            if attr_id not in STATUS_IDS + CONF_IDS or index is None:
                continue  # only the statuses are read; other attributes may even lack their values
            try:
                found[attr_id] = values[int(index)]
            except (ValueError, IndexError, TypeError):
                raise SdmxError(f"{where}: attribute {attr_id} has no value {index!r}") from None
        time = next((key.pop(t) for t in list(key) if t in time_ids), None)
        status = next((found[i] for i in STATUS_IDS if found.get(i)), None)
        conf = next((found[i] for i in CONF_IDS if found.get(i)), None)
        obs.add(time, cell[0], status, conf, key)

    for ds in datasets:
        for series_key, series in (ds.get("series") or {}).items():
            obs.start_series({**fixed, **_key(dims["series"], codes["series"], series_key, "series")})
            for obs_key, cell in (series.get("observations") or {}).items():
                add(
                    _key(dims["observation"], codes["observation"], obs_key, "observation"),
                    cell,
                    f"series {series_key}",
                )
        if ds.get("observations"):
            obs.start_series(dict(fixed))
            for obs_key, cell in ds["observations"].items():
                add(
                    _key(dims["observation"], codes["observation"], obs_key, "observation"),
                    cell,
                    f"observation {obs_key}",
                )
    order = sorted((d for level in dims.values() for d in level), key=lambda d: d.get("keyPosition", 10**6))
    return obs, _dataflow(structure, datasets), [d["id"] for d in order]


def _dataflow(structure: dict, datasets: list) -> str | None:
    links = [*(structure.get("links") or []), *(link for ds in datasets for link in (ds.get("links") or []))]
    for link in links:
        m = _DATAFLOW.search(str(link.get("urn") or "")) if isinstance(link, dict) else None
        if m:
            return m.group(1).lower()
    return None
