"""The columns of the long table every Eurostat and SDMX decoder returns (light: no pandas import, so that a task
that decodes nothing, e.g. the plan of a no-change night, can name them)."""

from __future__ import annotations

from collections.abc import Iterable

TAIL_COLUMNS = ("time", "value", "obs_status", "conf_status", "source_updated_at")
NON_DIMENSION_COLUMNS = ("dataset", *TAIL_COLUMNS)


def dimension_columns(columns: Iterable[str]) -> list[str]:
    """The dimension columns of a long table (every column but ``dataset`` and the tail), in order, from its column
    names (a frame's ``columns``, a table's ``column_names``)."""
    return [c for c in columns if c not in NON_DIMENSION_COLUMNS]
