"""SDMX-ML data messages: 2.1 GenericData and StructureSpecificData, 2.0 CompactData (and 2.0 GenericData).

Expat first checks that the whole message is well-formed XML, in C and without a Python call per element (it
fetches no external entity and refuses entity-expansion bombs). The tags are then cut out by one regular
expression and walked in Python, reading attributes only of the elements that carry data: about ten times
faster than a Python callback per element (measured in ``bench/bench_sdmx.py``), which matters because a generic
message spends five elements on each observation. Elements are known by their local name, whatever the namespace
prefix a provider uses (``m:``, ``message:``, ``OECD:`` or none).

* Generic: series keys and observation keys are ``Value`` elements (``id`` in 2.1, ``concept`` in 2.0); the time
  is ``ObsDimension`` (2.1) or ``Time`` (2.0); the value ``ObsValue``; statuses are observation attributes.
* Structure-specific / compact: dimensions and attributes are XML attributes of ``Series`` and ``Obs``. The DSD
  (``dsd``) tells dimensions from attributes; without it every XML attribute of a series is taken for a dimension,
  and of an observation only the time, value and statuses are read (every dimension at the observation when the
  header says ``dimensionAtObservation="AllDimensions"``).
"""

from __future__ import annotations

import html
import re
from xml.parsers import expat

from ingest.sdmx.errors import SdmxError
from ingest.sdmx.structure import Dsd
from ingest.sdmx.table import CONF_IDS, OBSERVATION_FIELDS, STATUS_IDS, TIME_IDS, Observations, first_of

DATA_MESSAGES = frozenset(
    {"GenericData", "StructureSpecificData", "CompactData", "GenericTimeSeriesData", "StructureSpecificTimeSeriesData"}
)
# A tag: "/" if it closes, its local name, its attributes, the text up to the next tag.
_TAG = re.compile(
    r"<(/?)(?:[A-Za-z_][\w.-]*:)?([A-Za-z_][\w.-]*)((?:\s+[^\s=<>]+\s*=\s*(?:\"[^\"]*\"|'[^']*'))*)\s*/?>([^<]*)"
)
_ATTR = re.compile(r"([^\s=]+)\s*=\s*(?:\"([^\"]*)\"|'([^']*)')")
_SKIP = re.compile(r"<!--.*?-->|<!\[CDATA\[.*?\]\]>|<\?.*?\?>|<!DOCTYPE[^>]*>", re.S)
_ENCODING = re.compile(rb"^\s*<\?xml[^>]*encoding\s*=\s*[\"']([\w.-]+)[\"']")
_REF = re.compile(r"=[^:=]+:([^(:]+)\(")
_VALUE = re.compile(r"\svalue=\"([^\"]*)\"")


def _value(text: str) -> str | None:
    """The ``value`` attribute of an element (the one attribute of ObsDimension and ObsValue)."""
    m = _VALUE.search(text)
    if m is None:
        return _attrs(text).get("value")
    return html.unescape(m.group(1)) if "&" in m.group(1) else m.group(1)


def _attrs(text: str) -> dict[str, str]:
    out = {}
    for name, double, single in _ATTR.findall(text):
        value = double or single
        out[name] = html.unescape(value) if "&" in value else value
    return out


class _Reader:
    def __init__(self, dsd: Dsd | None) -> None:
        self.dims = set(dsd.key_order) if dsd else None
        self.obs = Observations()
        self.at_obs = "TIME_PERIOD"
        self.names: dict[str, str] = {}  # where the data set's id may come from

    def header(self, tag: str, attrs: str, text: str) -> None:
        if tag == "Structure" and "dimensionAtObservation" in attrs:
            got = _attrs(attrs)
            self.at_obs = got["dimensionAtObservation"]
            self.names.setdefault("namespace", got.get("namespace", ""))
        elif tag == "Ref" and " id=" in attrs:
            self.names.setdefault("ref", _attrs(attrs).get("id", ""))
        elif tag == "DataSet" and "keyFamilyURI" in attrs:
            self.names.setdefault("keyfamily", _attrs(attrs)["keyFamilyURI"].rstrip("/").rsplit("/", 1)[-1])
        elif tag in ("URN", "DataSetID"):
            self.names.setdefault(tag, text.strip())

    def generic(self, tags: list[tuple[str, str, str, str]]) -> None:
        """GenericData (2.1 and 2.0): Value lists in SeriesKey, ObsKey and an observation's Attributes."""
        obs, at_obs = self.obs, self.at_obs
        target: dict[str, str] | None = None
        key: dict[str, str] = {}
        obs_key: dict[str, str] = {}
        obs_attrs: dict[str, str] = {}
        time = value = None
        in_obs = False
        for close, tag, attrs, text in tags:
            if tag == "Value":
                if target is not None and not close:
                    got = _attrs(attrs)
                    concept = got.get("id") or got.get("concept")
                    if concept:
                        target[concept] = got.get("value")
            elif tag == "Obs":
                if not close:
                    in_obs, obs_key, obs_attrs, time, value = True, {}, {}, None, None
                    continue
                if obs_key:
                    time = time or first_of(obs_key, (at_obs, *TIME_IDS))
                    okey = {k: v for k, v in obs_key.items() if k != at_obs and k not in TIME_IDS}
                else:
                    okey = None
                if obs_attrs:
                    obs.add(time, value, first_of(obs_attrs, STATUS_IDS), first_of(obs_attrs, CONF_IDS), okey)
                else:
                    obs.add(time, value, None, None, okey)
                in_obs = False
            elif tag == "ObsDimension" and not close:
                time = _value(attrs)
            elif tag == "ObsValue" and not close:
                value = _value(attrs)
            elif tag == "Time" and not close:
                time = text.strip()
            elif tag == "SeriesKey":
                if close:
                    obs.start_series(key)
                    target = None
                else:
                    key = {}
                    target = key
            elif tag == "ObsKey":
                target = None if close else obs_key
            elif tag == "Attributes":
                target = obs_attrs if in_obs and not close else None
            else:
                self.header(tag, attrs, text) if not close else None

    def plain(self, tags: list[tuple[str, str, str, str]]) -> None:
        """StructureSpecificData and CompactData: dimensions and attributes are the elements' XML attributes."""
        obs, at_obs, dims = self.obs, self.at_obs, self.dims
        for close, tag, attrs, text in tags:
            if close:
                continue
            if tag == "Obs":
                got = _attrs(attrs)
                time = (got.get(at_obs) if at_obs != "AllDimensions" else None) or first_of(got, TIME_IDS)
                if dims is not None:
                    okey = {k: v for k, v in got.items() if k in dims and k not in TIME_IDS and k != at_obs}
                elif at_obs == "AllDimensions":
                    okey = {k: v for k, v in got.items() if ":" not in k and k not in OBSERVATION_FIELDS}
                else:
                    okey = None
                obs.add(time, got.get("OBS_VALUE"), first_of(got, STATUS_IDS), first_of(got, CONF_IDS), okey)
            elif tag == "Series":
                got = _attrs(attrs)
                obs.start_series({k: v for k, v in got.items() if ":" not in k and (dims is None or k in dims)})
            else:
                self.header(tag, attrs, text)
                at_obs = self.at_obs

    def dataset(self) -> str | None:
        """The dataflow the header refers to, else the DSD in its namespace or URN, else the data set's id."""
        if self.names.get("ref"):
            return self.names["ref"].lower()
        for source in ("namespace", "URN"):
            m = _REF.search(self.names.get(source, ""))
            if m:
                return m.group(1).lower()
        name = self.names.get("DataSetID") or self.names.get("keyfamily")
        return name.lower() if name else None


def _well_formed(body: bytes) -> None:
    parser = expat.ParserCreate()
    try:
        parser.Parse(body, True)
    except expat.ExpatError as exc:
        raise SdmxError(f"not well-formed XML ({expat.ErrorString(exc.code)} at line {exc.lineno})") from None


def _text(body: bytes) -> str:
    m = _ENCODING.match(body[:200].lstrip(b"\xef\xbb\xbf"))
    encoding = m.group(1).decode().lower() if m else "utf-8"
    try:
        text = body.decode("utf-8-sig" if encoding.replace("_", "-") in ("utf-8", "utf8", "us-ascii") else encoding)
    except (LookupError, UnicodeDecodeError) as exc:
        raise SdmxError(f"cannot read the message as {encoding} ({exc.__class__.__name__})") from None
    return _SKIP.sub("", text) if ("<!" in text or "<?" in text) else text


def read_xml(body: bytes, dsd: Dsd | None = None) -> tuple[Observations, str | None]:
    """The observations of an SDMX-ML data message and the id of its dataflow (or DSD) when the header names it."""
    _well_formed(body)
    tags = _TAG.findall(_text(body))
    root = tags[0][1] if tags else None
    if root not in DATA_MESSAGES:
        raise SdmxError(f"<{root}> is not an SDMX-ML data message")
    reader = _Reader(dsd)
    if root.startswith("Generic"):
        reader.generic(tags[1:])
    else:
        reader.plain(tags[1:])
    return reader.obs, reader.dataset()
