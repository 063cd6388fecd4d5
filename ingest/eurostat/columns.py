"""The columns of the long table every Eurostat and SDMX decoder returns (light: no pandas import, so that a task
that decodes nothing, e.g. the plan of a no-change night, can name them)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

TAIL_COLUMNS = ("time", "value", "obs_status", "conf_status", "source_updated_at")
NON_DIMENSION_COLUMNS = ("dataset", *TAIL_COLUMNS)


def dimension_columns(frame: pd.DataFrame) -> list[str]:
    """The dimension columns of a long table (every column but ``dataset`` and the tail), in order."""
    return [c for c in frame.columns if c not in NON_DIMENSION_COLUMNS]
