"""Observations collected by a reader, turned into the long table of :mod:`ingest.eurostat.frames`:
``dataset``, one column per non-time dimension (lower-case id, in the structure's key order), ``time``,
``value`` (float64, NaN when an observation has a status but no value), ``obs_status``, ``conf_status``,
``source_updated_at``.

Status codes are kept as the provider wrote them (``OBS_STATUS`` or ``OBS_FLAG``; ``CONF_STATUS`` or
``OBS_CONF``): SDMX code lists are the provider's, so nothing is split or remapped as for Eurostat's flags
(an SDMX ``P`` is "provisional", not confidentiality). Other attributes (units, decimals, titles) are left out,
as ``eurostat decode`` leaves them out.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ingest.eurostat.frames import STR, _frame, normalise_period
from ingest.sdmx.errors import SdmxError

TIME_IDS = ("TIME_PERIOD", "TIME")
VALUE_IDS = ("OBS_VALUE",)
STATUS_IDS = ("OBS_STATUS", "OBS_FLAG")
CONF_IDS = ("CONF_STATUS", "OBS_CONF")
OBSERVATION_FIELDS = frozenset(TIME_IDS + VALUE_IDS + STATUS_IDS + CONF_IDS)


def first_of(values: dict, ids: tuple[str, ...]) -> str | None:
    for key in ids:
        got = values.get(key)
        if got not in (None, ""):
            return got
    return None


@dataclass
class Observations:
    """What a reader found: per series its key (dimension id → code), per observation its series, its own
    dimensions (messages with every dimension at the observation), time, value, statuses."""

    series_keys: list[dict[str, str]] = field(default_factory=list)
    series: list[int] = field(default_factory=list)
    obs_keys: dict[int, dict[str, str]] = field(default_factory=dict)  # observation → its own dimensions
    time: list[str | None] = field(default_factory=list)
    value: list[str | float | None] = field(default_factory=list)
    status: list[str | None] = field(default_factory=list)
    conf: list[str | None] = field(default_factory=list)
    updated: str | None = None

    def start_series(self, key: dict[str, str]) -> None:
        self.series_keys.append(key)

    def add(self, time, value, status=None, conf=None, key: dict[str, str] | None = None) -> None:
        if not self.series_keys:
            self.series_keys.append({})  # observations straight in the data set
        self.series.append(len(self.series_keys) - 1)
        if key:
            self.obs_keys[len(self.time)] = key
        self.time.append(time)
        self.value.append(value)
        self.status.append(status)
        self.conf.append(conf)

    def frame(self, dataset: str | None, order: list[str] | None = None) -> pd.DataFrame:
        """The long table; dimension columns in ``order`` (the DSD's key order) when given, else as first seen.
        Time dimensions never become a column of their own (they are ``time``)."""
        names: list[str] = []
        for key in (*self.series_keys, *self.obs_keys.values()):
            names.extend(k for k in key if k not in names)
        if order is not None:
            names = [n for n in order if n in names] + [n for n in names if n not in order]
        names = [n for n in names if n.upper() not in TIME_IDS]
        if len({n.lower() for n in names}) != len(names):
            raise SdmxError(f"two dimensions differ only in case: {sorted(names)}")
        dims = []
        series = np.asarray(self.series, dtype=np.int64)
        for name in names:
            col = np.array([k.get(name) for k in self.series_keys], dtype=object)[series]
            for i, key in self.obs_keys.items():
                if name in key:
                    col[i] = key[name]
            dims.append((name.lower(), pd.array(col, dtype=STR)))
        periods = {t: normalise_period(t) for t in set(self.time) if t is not None}
        time = pd.array([periods.get(t) for t in self.time], dtype=STR)
        return _frame(dataset, dims, time, numbers(self.value), _text(self.status), _text(self.conf), self.updated)


def numbers(values: list) -> np.ndarray:
    """Observation values as float64 (missing, empty and ``NaN`` → NaN); a non-number: one line naming it."""
    try:  # numpy parses the text of every value in C; the loop below only runs to name a bad one
        if not any(v is True or v is False for v in values):  # numpy would take a JSON true for 1.0
            return np.array(["nan" if v is None or v == "" else v for v in values], dtype=np.float64)
    except (TypeError, ValueError):
        pass
    out = np.empty(len(values), dtype=np.float64)
    for i, v in enumerate(values):
        if v is None or v == "":
            out[i] = math.nan
            continue
        try:
            if isinstance(v, bool):
                raise TypeError
            out[i] = float(v)
        except (TypeError, ValueError):
            raise SdmxError(f"observation {i + 1} has a value that is not a number: {str(v)[:40]!r}") from None
    return out


def _text(values: list[str | None]):
    return pd.array([v if v not in ("",) else None for v in values], dtype=STR)
