"""parse_file never raises on damaged input, and layout variants the codebooks promise are accepted."""

from __future__ import annotations

import dataclasses
import json
import random

import pytest

from ingest.surveys.spec import codebook, load_codebooks
from tests.surveys.conftest import assert_located, edit_xlsx, parse, sample_bytes
from tools.survey_samples import SAMPLES, sample_path


@pytest.mark.parametrize("spec", SAMPLES[::2], ids=lambda s: s.filename)
def test_truncated_and_garbled_files_never_raise(spec) -> None:
    data = sample_path(spec).read_bytes()
    rng = random.Random(7)
    variants = [data[:n] for n in (1, 10, 100, len(data) // 3, len(data) - 1)]
    for _ in range(5):
        b = bytearray(data)
        for _ in range(20):
            b[rng.randrange(len(b))] = rng.randrange(256)
        variants.append(bytes(b))
    variants.append(b"\x00" * 50 + data[:300])
    for v in variants:
        r = parse(v, spec.filename, spec.cluster, spec.instrument)
        for p in r.problems:
            assert "\n" not in p.message and spec.filename in p.message
        if not r.ok:
            assert r.tables == {}


def test_invalid_json_is_located() -> None:
    p = next(p for p in parse(b'{"results": [', "kobo.json", "mse_cluster").problems if p.code == "invalid_json")
    assert_located(p)


def test_kobo_bare_list_is_accepted() -> None:
    data, name = sample_bytes("mse_cluster", "sme_needs")
    bare = json.dumps(json.loads(data)["results"], ensure_ascii=False).encode()
    r = parse(bare, name, "mse_cluster")
    assert r.ok and r.row_counts["survey_sme_respondents"] == 41


def test_single_sheet_export_with_another_sheet_name() -> None:
    data, name = sample_bytes("sports_technology", "sme_needs")
    r = parse(
        edit_xlsx(data, lambda wb: setattr(wb["Antwoorden"], "title", "Formulierreacties 1")),
        name,
        "sports_technology",
    )
    assert r.ok and r.codebook == "sme_needs.xlsx.nl"


def test_encoding_auto_accepts_utf8_and_windows_1252() -> None:
    auto = dataclasses.replace(codebook("sme_needs.limesurvey.fr"), encoding="auto")
    others = tuple(cb for cb in load_codebooks() if cb.id != auto.id)
    data, name = sample_bytes("cluster_montagne", "sme_needs")
    for variant in (
        data,
        data.decode("cp1252").encode("utf-8"),
        b"\xef\xbb\xbf" + data.decode("cp1252").encode(),
    ):
        r = parse(variant, name, "cluster_montagne", codebooks=(auto, *others))
        assert r.ok, [p.message for p in r.errors]


def test_negative_figures_are_numbers_not_formulas() -> None:
    values = []
    for spec in SAMPLES:
        if spec.instrument == "state_of_affairs":
            r = parse(sample_path(spec).read_bytes(), spec.filename, spec.cluster, spec.instrument)
            values += list(r.tables["survey_soa_figures"]["value"])
            assert not r.problems
    assert min(values) < 0
