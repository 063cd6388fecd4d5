"""Contract and codebooks are consistent: every codebook target is a contract field, every label a code."""

from __future__ import annotations

import pytest

from ingest.config import load_catalogue
from ingest.surveys.spec import (
    FIELD_TYPES,
    allowed_codes,
    code_lists,
    contract_instruments,
    load_codebooks,
    load_contract,
    nace_reference,
    nuts3_reference,
)


def test_contracts_are_versioned_and_typed() -> None:
    assert contract_instruments() == ["sme_needs", "state_of_affairs"]
    for i in contract_instruments():
        c = load_contract(i)
        assert c.version == 1
        for s in c.sections.values():
            assert all(f.type in FIELD_TYPES for f in s.fields.values())
    assert len(code_lists()["services"]) == 13


def test_reference_lists() -> None:
    assert {"93.11", "93.12", "93.13", "93.19", "32.30", "47.64", "85.51"} <= nace_reference()
    cat = load_catalogue()
    for c in cat.clusters:
        allowed = allowed_codes("nuts3", c.id, cat)
        assert allowed and all(any(code.startswith(r) for r in c.regions) for code in allowed)
        if c.seat:
            assert c.seat in allowed
    assert "FRK11" in allowed_codes("nuts3", "cluster_montagne", cat)  # FRK1 Auvergne too
    # every NUTS 3 code of Europe, but a cluster's answers only within its regions, in their declared NUTS version
    assert set(cat.regions) < set(nuts3_reference().values())
    assert "NL415" in nuts3_reference() and "NL415" not in allowed_codes("nuts3", "sports_technology", cat)  # 2024 only
    assert {"NL361", "NL366"} <= allowed_codes("nuts3", "sports_technology", cat)  # NL36 is declared NUTS 2024


@pytest.mark.parametrize("cb", load_codebooks(), ids=lambda c: c.id)
def test_codebook_targets_and_labels_are_valid(cb) -> None:
    contract = load_contract(cb.instrument)
    cat = load_catalogue()
    for sname, s in cb.sections.items():
        spec = contract.sections[sname]
        for t in s.columns.values():
            f = spec.fields[t.field]
            if t.code is not None:
                assert f.type == "multi_code" or f.per, (cb.id, t)
                lists = f.codes or (f.per,)
                assert any(t.code in code_lists()[lst] for lst in lists), (cb.id, t)
    for lst, labels in cb.labels.get("codes", {}).items():
        allowed = allowed_codes(lst, "epsi", cat) if lst != "nuts3" else set()
        assert set(labels.values()) <= allowed, (cb.id, lst)
    for kind, labels in cb.labels.items():
        if kind.startswith("likert"):
            assert set(labels.values()) <= {1, 2, 3, 4, 5}
