"""The state of one parse with one codebook (not the Airflow run context, which is ``ctx`` elsewhere)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ingest.config import Catalogue
from ingest.surveys.problems import Problems
from ingest.surveys.spec import Codebook, Contract, allowed_codes, norm


@dataclass
class ParseState:
    """What the value, record and table stages read while parsing one file with one codebook ``cb``: the file
    and where it came from, the contract, the pseudonymisation key, the problems found so far (``pr``), and
    caches of the cluster's allowed codes and the codebook's answer labels."""

    file: str
    cluster: str
    instrument: str
    catalogue: Catalogue
    contract: Contract
    cb: Codebook
    key: bytes
    pr: Problems
    _allowed: dict[str, set[str]] = field(default_factory=dict)
    _labels: dict[str, dict[str, Any]] = field(default_factory=dict)

    def allowed(self, list_name: str) -> set[str]:
        if list_name not in self._allowed:
            self._allowed[list_name] = allowed_codes(list_name, self.cluster, self.catalogue)
        return self._allowed[list_name]

    def allowed_by_norm(self, list_name: str) -> dict[str, str]:
        key = f"norm:{list_name}"
        if key not in self._labels:
            self._labels[key] = {norm(a): a for a in self.allowed(list_name)}
        return self._labels[key]

    def labels(self, kind: str) -> dict[str, Any]:
        if kind not in self._labels:
            self._labels[kind] = self.cb.label_map(kind)
        return self._labels[kind]
