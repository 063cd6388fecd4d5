"""Eurostat's period codes and status flags (light: no numpy, pandas or Arrow, so that a decoder that needs none
of them can use these)."""

from __future__ import annotations

import re

CONF_FLAGS = frozenset("CNP")
TIME_IDS = ("time", "time_period")  # the time dimension's id (SDMX 2.1 TSV and JSON-stat; lower-cased)

_SUB_PERIOD = re.compile(r"(\d{4})-?([QSHW])(\d+)")
_MONTH = re.compile(r"(\d{4})M(\d{2})")


def normalise_period(code: str) -> str:
    """``2021`` → ``2021``; ``2021Q1``/``2021-Q1`` → ``2021-Q1``; ``2021M05``/``2021-05`` → ``2021-05``."""
    code = code.strip()
    if len(code) < 6 or (code[4] == "-" and code[5] not in "QSHW"):
        return code  # a year, a date or an ISO month already (the most common periods: no regular expression)
    m = _SUB_PERIOD.fullmatch(code)
    if m:
        return f"{m.group(1)}-{m.group(2)}{m.group(3)}"
    m = _MONTH.fullmatch(code)
    if m:
        return f"{m.group(1)}-{m.group(2)}"
    return code


def split_flag(flag: str | None) -> tuple[str | None, str | None]:
    """Split a status into (observation status, confidentiality): ``"p|C"`` → (p, C), ``"|C"`` → (None, C).

    Without ``|``, upper-case C/N/P are confidentiality and the other letters observation status; the
    pre-2025 lower-case ``c`` (confidential) maps to confidentiality ``C``.
    """
    if not flag:
        return None, None
    flag = flag.strip()
    if "|" in flag:
        obs, conf = flag.split("|", 1)
    else:
        obs = "".join(ch for ch in flag if ch not in CONF_FLAGS)
        conf = "".join(ch for ch in flag if ch in CONF_FLAGS)
    if "c" in obs:
        obs = obs.replace("c", "")
        conf = conf or "C"
    return (obs.strip() or None), (conf.strip() or None)


def flag_maps(uniques: list[str | None]) -> tuple[list[str], list[str], list[int], list[int]]:
    """For factorised flag strings: the sorted observation and confidentiality codes, and each flag's position in
    them (-1: none), plus a trailing -1 for "no flag" (code -1 indexes it)."""
    split = [split_flag(u) for u in uniques]
    obs_cats = sorted({o for o, _c in split if o})
    conf_cats = sorted({c for _o, c in split if c})
    obs_at = {o: i for i, o in enumerate(obs_cats)}
    conf_at = {c: i for i, c in enumerate(conf_cats)}
    obs_map = [obs_at[o] if o else -1 for o, _c in split] + [-1]
    conf_map = [conf_at[c] if c else -1 for _o, c in split] + [-1]
    return obs_cats, conf_cats, obs_map, conf_map
