"""The validate stage validates batches together (one GX validation per suite, context and round) and never puts
two batches that share a value of a key their suite requires unique in one validation: a survey file and its
re-submitted correction share those (one response per cluster and wave), so validating them together failed every
night and cost a validation per file (the bundled night: 80 GX validations of survey tables; one round per source
folder: 31; rounds by key: 20). A batch that fails is still found on its own. Real GX on the bundled sample files
(parsed in-process, no warehouse)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from ingest.config import SAMPLES_DIR
from ingest.surveys.parse import parse_file
from ingest.tasks import gate
from ingest.tasks.surveys import checks_for
from ingest.validation import Validator

CORRECTED = "mse_cluster/state_of_affairs/state_of_affairs_2025.xlsx"
CORRECTION = "mse_cluster/state_of_affairs/state_of_affairs_2025_javitott.xlsx"


@pytest.fixture(scope="module")
def pending() -> list[tuple]:
    """(batch, suite, frame, context, key) per table of every bundled survey file, as the validate task has them."""
    out = []
    inbox = SAMPLES_DIR / "inbox"
    for path in sorted(inbox.glob("*/*/*")):
        cluster, instrument = path.parent.parent.name, path.parent.name
        result = parse_file(path.read_bytes(), path.name, cluster, instrument, key=b"rounds-test-key-0123456789abcdef")
        assert result.ok, path
        batch = SimpleNamespace(batch_id=path.relative_to(inbox).as_posix(), object=path.relative_to(inbox).as_posix())
        out += [(batch, suite, frame, context, None) for suite, frame, context in checks_for(result.tables, cluster)]
    assert {p[0].object for p in out} >= {CORRECTED, CORRECTION}
    return out


def spied(tmp_path) -> tuple[Validator, list[tuple[str, str, bool]]]:
    """A Validator that records (suite, batch id, success) of every GX validation it runs."""
    validator, calls = Validator(docs_dir=tmp_path / "docs"), []
    validate = validator.validate

    def spy(suite, batch_id, frame, *, context=None):
        verdict = validate(suite, batch_id, frame, context=context)
        calls.append((suite, batch_id, verdict.success))
        return verdict

    validator.validate = spy
    return validator, calls


def test_a_good_night_is_validated_in_few_combined_validations_that_all_pass(pending, tmp_path):
    validator, calls = spied(tmp_path)
    verdicts = gate._run_checks(validator, pending, True)
    assert all(v.success for v in verdicts), [v.summary() for v in verdicts if not v.success]
    assert [v.batch_id for v in verdicts] == [p[0].batch_id for p in pending]  # one verdict per batch, in order
    # no validation failed: the file and its correction (same cluster and wave) were never validated together
    assert all(ok for _suite, _batch, ok in calls), [c for c in calls if not c[2]]
    # 94 batch tables; rounds: the 6 state-of-affairs suites 2 each (MSE's corrected 2025 file repeats the cluster
    # and wave of its 2025 file; its 2024 file joins the first round), the 3 SME-needs suites 1 each (two waves never
    # share a key), the cluster-restricted respondents suite one per cluster (its context)
    assert len(pending) == 94
    assert len(calls) == 6 * 2 + 3 + 5, calls
    rounds = {}
    for suite, batch_id, _ok in calls:
        rounds.setdefault(suite, []).append(batch_id)
    kpis = rounds["survey_soa_kpis"]
    assert kpis[0].startswith("survey_soa_kpis:combined:") and kpis[1] == CORRECTION, kpis


def test_a_failing_batch_is_found_on_its_own(pending, tmp_path):
    bad_index = next(i for i, p in enumerate(pending) if p[0].object == CORRECTION and p[1] == "survey_soa_kpis")
    frame = pending[bad_index][2].copy()
    frame["cluster"] = None  # required: critical
    broken = list(pending)
    broken[bad_index] = (*pending[bad_index][:2], frame, *pending[bad_index][3:])
    validator, _calls = spied(tmp_path)
    verdicts = gate._run_checks(validator, broken, True)
    failed = [broken[i][0].object + " " + broken[i][1] for i, v in enumerate(verdicts) if not v.success]
    assert failed == [f"{CORRECTION} survey_soa_kpis"]
