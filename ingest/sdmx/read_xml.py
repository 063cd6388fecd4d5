"""SDMX-ML data messages: 2.1 GenericData and StructureSpecificData, 2.0 CompactData (and 2.0 GenericData).

Expat first checks that the whole message is well-formed XML, in C and without a Python call per element (it
fetches no external entity; a message with a DTD is refused, as SDMX never uses one, so no entity can mean one thing
to expat and another below). The tags are then cut out by one regular expression, a megabyte of markup at a time,
and walked in Python, reading attributes only of the elements that carry data: about a third less time than a Python
callback per element on the synthetic generic message of ``bench/bench_sdmx.py`` (a generic message spends five
elements on each observation). Hand-written rather than the reference library sdmx1 because it is 7-12 times faster
(same benchmark). Elements are known by their local name, whatever the namespace prefix a provider uses (``m:``,
``message:``, ``OECD:`` or none).

* Generic: series keys and observation keys are ``Value`` elements (``id`` in 2.1, ``concept`` in 2.0); the
  dimension at the observation is ``ObsDimension`` (2.1) or the time ``Time`` (2.0); the value ``ObsValue``;
  statuses are observation attributes.
* Structure-specific / compact: dimensions and attributes are XML attributes of ``Series`` and ``Obs``. The DSD
  (``dsd``) tells dimensions from attributes; without it every XML attribute of a series is taken for a dimension,
  and of an observation only the dimension at the observation (``dimensionAtObservation``, the time unless the
  header says otherwise; every one with ``AllDimensions``), the value and statuses are read.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from xml.parsers import expat

from ingest.sdmx.errors import SdmxError
from ingest.sdmx.structure import Dsd
from ingest.sdmx.table import CONF_IDS, OBSERVATION_FIELDS, STATUS_IDS, TIME_IDS, Observations, first_of

DATA_MESSAGES = frozenset(
    {"GenericData", "StructureSpecificData", "CompactData", "GenericTimeSeriesData", "StructureSpecificTimeSeriesData"}
)
# Messages naming dimensions and attributes alike (as XML attributes): only their DSD tells them apart.
_NEEDS_DSD = re.compile(
    rb"<(?:[A-Za-z_][\w.-]*:)?(?:"
    + b"|".join(sorted(m.encode() for m in DATA_MESSAGES if not m.startswith("Generic")))
    + rb")\b"
)
# A tag: "/" if it closes, its local name, its attributes, "/" if it closes itself, the text up to the next tag.
_TAG = re.compile(
    r"<(/?)(?:[A-Za-z_][\w.-]*:)?([A-Za-z_][\w.-]*)((?:\s+[^\s=<>]+\s*=\s*(?:\"[^\"]*\"|'[^']*'))*)\s*(/?)>([^<]*)"
)
_ATTR = re.compile(r"([^\s=]+)\s*=\s*(?:\"([^\"]*)\"|'([^']*)')")
_SKIP = re.compile(r"<!--.*?-->|<\?.*?\?>", re.S)
_CDATA = re.compile(r"<!\[CDATA\[(.*?)\]\]>", re.S)
_ENCODING = re.compile(rb"^\s*<\?xml[^>]*encoding\s*=\s*[\"']([\w.-]+)[\"']")
_REF = re.compile(r"=[^:=]+:([^(:]+)\(")
_VALUE = re.compile(r"\svalue=\"([^\"]*)\"")

Tag = tuple[str, str, str, str, str]  # close, local name, attributes, self-close, text after


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
            self.at_obs = got.get("dimensionAtObservation") or self.at_obs
            self.names.setdefault("namespace", got.get("namespace", ""))
        elif tag == "Ref" and " id=" in attrs:
            self.names.setdefault("ref", _attrs(attrs).get("id", ""))
        elif tag == "DataSet" and "keyFamilyURI" in attrs:
            uri = _attrs(attrs).get("keyFamilyURI", "")
            if uri:
                self.names.setdefault("keyfamily", uri.rstrip("/").rsplit("/", 1)[-1])
        elif tag in ("URN", "DataSetID"):
            self.names.setdefault(tag, text.strip())

    def _add(self, series_time: str | None, obs_dims: dict[str, str], value, status, conf) -> None:
        """One observation: its time from its own dimensions, else from its series key (when the dimension at the
        observation is not the time); its other own dimensions kept."""
        time = None
        if obs_dims:
            time = next((obs_dims.pop(t) for t in TIME_IDS if t in obs_dims), None)
        self.obs.add(time or series_time, value, status, conf, obs_dims or None)

    def _start_series(self, key: dict[str, str]) -> str | None:
        """Start a series; the time when its key holds it (the time is never a column of its own)."""
        time = next((key.pop(t) for t in TIME_IDS if t in key), None)
        self.obs.start_series(key)
        return time

    def generic(self, tags: Iterator[Tag]) -> None:
        """GenericData (2.1 and 2.0): Value lists in SeriesKey, ObsKey and an observation's Attributes."""
        target: dict[str, str] | None = None
        key: dict[str, str] = {}
        obs_key: dict[str, str] = {}
        obs_attrs: dict[str, str] = {}
        series_time = value = None
        in_obs = False
        for close, tag, attrs, self_close, text in tags:
            if tag == "Value":
                if target is not None and not close:
                    got = _attrs(attrs)
                    concept = got.get("id") or got.get("concept")
                    if concept:
                        target[concept] = got.get("value")
            elif tag == "Obs":
                if not close:
                    in_obs, obs_key, obs_attrs, value = True, {}, {}, None
                    if not self_close:
                        continue
                if obs_attrs:
                    status, conf = first_of(obs_attrs, STATUS_IDS), first_of(obs_attrs, CONF_IDS)
                else:
                    status = conf = None
                self._add(series_time, obs_key, value, status, conf)
                in_obs = False
            elif tag == "ObsDimension" and not close:
                got = _attrs(attrs)
                obs_key[got.get("id") or self.at_obs] = got.get("value")
            elif tag == "ObsValue" and not close:
                value = _value(attrs)
            elif tag == "Time" and not close:
                obs_key["TIME_PERIOD"] = text.strip()
            elif tag == "SeriesKey":
                if not close:
                    key = {}
                    target = key
                if close or self_close:
                    series_time = self._start_series(key)
                    target = None
            elif tag == "ObsKey":
                target = None if close or self_close else obs_key
            elif tag == "Attributes":
                target = obs_attrs if in_obs and not close and not self_close else None
            elif not close:
                self.header(tag, attrs, text)

    def plain(self, tags: Iterator[Tag]) -> None:
        """StructureSpecificData and CompactData: dimensions and attributes are the elements' XML attributes."""
        dims = self.dims
        series_time = None
        for close, tag, attrs, _self_close, text in tags:
            if close:
                continue
            if tag == "Obs":
                got = _attrs(attrs)
                at_obs = self.at_obs
                if dims is not None:
                    own = {k: v for k, v in got.items() if k in dims or k in TIME_IDS}
                elif at_obs == "AllDimensions":
                    own = {
                        k: v for k, v in got.items() if ":" not in k and k not in OBSERVATION_FIELDS or k in TIME_IDS
                    }
                else:
                    own = {k: got[k] for k in (at_obs, *TIME_IDS) if k in got}
                self._add(series_time, own, got.get("OBS_VALUE"), first_of(got, STATUS_IDS), first_of(got, CONF_IDS))
            elif tag == "Series":
                got = _attrs(attrs)
                series_time = self._start_series(
                    {k: v for k, v in got.items() if ":" not in k and (dims is None or k in dims)}
                )
            else:
                self.header(tag, attrs, text)

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


def needs_structure(body: bytes) -> bool:
    """Whether a data message is structure-specific SDMX-ML 2.1 or compact 2.0 (its root within the first 4 kB), so
    that only its DSD tells dimensions from attributes (:meth:`_Reader.plain`)."""
    return _NEEDS_DSD.search(body, 0, 4096) is not None


def _refuse_doctype(*_args) -> None:
    raise SdmxError("the message declares a DTD (DOCTYPE): SDMX data messages have none")


def _well_formed(body: bytes) -> None:
    parser = expat.ParserCreate()
    parser.StartDoctypeDeclHandler = _refuse_doctype
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
    if "<!" in text or "<?" in text:
        text = _CDATA.sub(lambda m: html.escape(m.group(1), quote=False), _SKIP.sub("", text))
    return text


_CHUNK = 1 << 20  # characters of markup whose tags are cut at once


def _tags(text: str) -> Iterator[Tag]:
    """The tags, cut a chunk of about a megabyte at a time (``findall`` in C per chunk: memory stays bounded by the
    chunk, not the message). A chunk ends where a tag starts; in well-formed XML no attribute value holds a ``<``
    and comments and CDATA sections are gone by now, so no tag is ever cut."""
    pos, n = 0, len(text)
    while pos < n:
        end = text.find("<", pos + _CHUNK) if pos + _CHUNK < n else n
        end = n if end == -1 else end
        yield from _TAG.findall(text, pos, end)
        pos = end


def read_xml(body: bytes, dsd: Dsd | None = None) -> tuple[Observations, str | None]:
    """The observations of an SDMX-ML data message and the id of its dataflow (or DSD) when the header names it."""
    _well_formed(body)
    tags = _tags(_text(body))
    first = next(tags, None)
    root = first[1] if first else None
    if root not in DATA_MESSAGES:
        raise SdmxError(f"<{root}> is not an SDMX-ML data message")
    reader = _Reader(dsd)
    if root.startswith("Generic"):
        reader.generic(tags)
    else:
        reader.plain(tags)
    return reader.obs, reader.dataset()
