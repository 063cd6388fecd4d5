"""The dimensions of an SDMX-ML 2.1 data structure definition (DSD): their ids in key order and the time
dimension. Structure-specific data messages name dimensions and attributes alike as XML attributes; the DSD tells
them apart (without one, every series-level XML attribute is taken for a dimension)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass

from ingest.sdmx.errors import SdmxError


@dataclass(frozen=True)
class Dsd:
    id: str
    dimensions: tuple[str, ...]  # key order, without the time dimension
    time: str | None

    @property
    def key_order(self) -> list[str]:
        return [*self.dimensions, *([self.time] if self.time else [])]


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def read_dsd(body: bytes) -> Dsd:
    """The first DataStructure of an SDMX-ML 2.1 structure message (expat: no external entities, no entity
    expansion bombs)."""
    try:
        root = ET.fromstring(body)
    except ET.ParseError as exc:
        raise SdmxError(f"the DSD is not well-formed XML ({exc})") from None
    for node in root.iter():
        if _local(node.tag) != "DataStructure":
            continue
        dims: list[tuple[int, str]] = []
        time = None
        for item in node.iter():
            kind = _local(item.tag)
            if kind in ("Dimension", "MeasureDimension") and item.get("id"):
                position = item.get("position") or ""
                dims.append((int(position) if position.isdigit() else len(dims) + 1, item.get("id")))
            elif kind == "TimeDimension":
                time = item.get("id")
        if not dims and not time:
            raise SdmxError(f"DSD {node.get('id')} lists no dimensions")
        return Dsd(node.get("id") or "", tuple(d for _, d in sorted(dims)), time)
    raise SdmxError("the structure message holds no DataStructure (a DSD is needed)")
