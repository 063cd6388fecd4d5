"""Current state never regresses (issue #15.1), property-style.

A random sequence (seeded; ``SS4GL_PROPERTY_SEED`` replays one, ``SS4GL_PROPERTY_RUNS`` adds more) of nightly
runs that receive new survey files, survey corrections and Eurostat revisions, with backfills of past dates in
between. A second, fresh warehouse and state folder receives the same inputs on the same nights and never sees a
backfill; its first night is the seen world's, copied (nothing differs before the first backfill; two first runs
of the same inputs agree in ``tests/ops/test_celery.py``). After every nightly the marts of both are equal (md5 of
every mart's rows; only ``mart_eurostat_revisions.revision_detected_at``, the wall-clock time this warehouse
noticed a revision, differs by nature). Real ``ss4gl run`` / ``ss4gl backfill`` (Airflow dag.test, Postgres, GX,
dbt) against a loopback Eurostat look-alike serving a samples folder the test revises.
"""

from __future__ import annotations

import datetime as dt
import os
import random
import re
import shutil
from pathlib import Path

import orjson
import pytest

from ingest.config import SAMPLES_DIR
from ingest.eurostat.replay import ReplayServer
from tests.conftest import clone_database, create_database, drop_database
from tests.integration._support import copy_sample_inbox
from tests.pipeline.test_nightly import mart_checksums, ss4gl

pytestmark = pytest.mark.timeout(3600)

FIRST_NIGHT = dt.date(2026, 11, 20)
NIGHTS = 3
HELD_BACK = (
    "sports_technology/sme_needs/behoeftepeiling_mkb_2025.xlsx",
    "indescat/sme_needs/indescat_necesidades_pymes_2025.xlsx",
)  # arrive on a later night
CORRECTABLE = ("epsi/state_of_affairs/state_of_affairs_2024.csv", "epsi/state_of_affairs/state_of_affairs_2025.csv")
REVISABLE = ("nama_10r_2gdp", "demo_r_d2jan", "sbs_sc_ovw")
KEY = "property-test-pseudonym-key-0123456789"  # both warehouses pseudonymise alike
WALL_CLOCK = ("revision_detected_at",)  # when this warehouse noticed a revision


def plan(seed: int) -> list[tuple]:
    """("night", i, changes) and ("backfill", first, last) steps; every backfill is followed by a nightly."""
    rnd = random.Random(seed)
    held = list(HELD_BACK)
    steps: list[tuple] = []
    for i in range(NIGHTS):
        changes: list[tuple] = []
        if i:
            if held and rnd.random() < 0.7:
                changes.append(("new_file", held.pop(rnd.randrange(len(held)))))
            if rnd.random() < 0.8:
                changes.append(("correction", rnd.choice(CORRECTABLE), rnd.randint(1500, 2999)))
            if rnd.random() < 0.8:
                changes.append(("revision", rnd.choice(REVISABLE), rnd.randint(0, 20), rnd.choice((-3, 2, 5))))
        steps.append(("night", i, changes))
        if i < NIGHTS - 1 or not any(s[0] == "backfill" for s in steps):
            for _ in range(rnd.choice((1, 1, 2)) if i else 1):
                first = rnd.randint(0, i)
                steps.append(("backfill", first, rnd.randint(first, min(i, first + 1))))
        if i == NIGHTS - 1 and steps[-1][0] == "backfill":
            steps.append(("night", NIGHTS, []))
    return steps


def night(i: int) -> str:
    return (FIRST_NIGHT + dt.timedelta(days=i)).isoformat()


def apply(change: tuple, inbox: Path, samples: Path, when: str, k: int) -> None:
    kind = change[0]
    if kind == "new_file":
        target = inbox / change[1]
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(SAMPLES_DIR / "inbox" / change[1], target)
    elif kind == "correction":  # a re-submitted file: another name, one number changed
        rel, value = change[1], change[2]
        data = re.sub(
            rb"member employees,\d+", b"member employees,%d" % value, (SAMPLES_DIR / "inbox" / rel).read_bytes()
        )
        (inbox / rel).with_name(f"{Path(rel).stem}_fix{k}.csv").write_bytes(data)
    elif kind == "revision":  # Eurostat revises a value silently; its table of contents says when
        dataset, index, pct = change[1:]
        path = samples / f"{dataset}.json"
        doc = orjson.loads(path.read_bytes())
        keys = sorted(doc["value"], key=int)
        key = keys[index % len(keys)]
        doc["value"][key] = round(doc["value"][key] * (100 + pct) / 100)
        doc["updated"] = f"{when}T11:00:00+0100"
        path.write_bytes(orjson.dumps(doc))
        stamp = dt.date.fromisoformat(when).strftime("%d.%m.%Y")
        toc = samples / "toc.txt"
        toc.write_text(
            re.sub(rf'("{dataset}"\t"dataset"\t)"[^"]*"', rf'\1"{stamp}"', toc.read_text(encoding="utf-8")),
            encoding="utf-8",
        )


class World:
    """A warehouse and a state folder; runs read the inputs of their night."""

    def __init__(self, server_url: str, root: Path):
        self.server_url, self.url = server_url, create_database(server_url)
        self.home = root / "state"

    def env(self, inputs: Path, base_url: str) -> dict:
        env = {
            **os.environ,
            "WAREHOUSE_URL": self.url,
            "SS4GL_HOME": str(self.home),
            "SURVEY_INBOX": str(inputs / "inbox"),
            "EUROSTAT_BASE_URL": base_url,
            "SS4GL_PSEUDONYM_KEY": KEY,
        }
        env.pop("OFFLINE", None)
        return env

    def run(self, args: list[str], inputs: Path) -> str:
        with ReplayServer(inputs / "eurostat") as server:
            res = ss4gl(args, self.env(inputs, server.base_url))
        assert res.returncode == 0, f"{' '.join(args)}: {res.stdout[-3000:]}{res.stderr[-3000:]}"
        return res.stdout

    def become_copy_of(self, other: World) -> None:
        """Hold what ``other`` holds: its warehouse (a template copy) and its state folder (archive, staging, the
        Airflow home; not airflow.cfg, which Airflow writes anew with this home's paths)."""
        drop_database(self.server_url, self.url)
        self.url = clone_database(self.server_url, other.url)
        shutil.rmtree(self.home, ignore_errors=True)
        shutil.copytree(other.home, self.home, symlinks=True, ignore=shutil.ignore_patterns("airflow.cfg"))

    def drop(self) -> None:
        drop_database(self.server_url, self.url)


def check_sequence(seed: int, server_url: str, tmp: Path) -> None:
    steps = plan(seed)
    inputs = tmp / "inputs"
    copy_sample_inbox(inputs / "inbox", skip=HELD_BACK)
    shutil.copytree(SAMPLES_DIR / "eurostat", inputs / "eurostat")
    seen, fresh = World(server_url, tmp / "seen"), World(server_url, tmp / "fresh")
    trace: list[str] = []
    night_inputs = inputs  # a backfill replays the archive; it reads no inputs
    try:
        for step in steps:
            if step[0] == "backfill":
                trace.append(f"backfill {night(step[1])}..{night(step[2])}")
                seen.run(["backfill", "--from", night(step[1]), "--to", night(step[2])], night_inputs)
                continue
            _, i, changes = step
            for k, change in enumerate(changes):
                apply(change, inputs / "inbox", inputs / "eurostat", night(i), i * 10 + k)
            night_inputs = tmp / f"night{i}"  # what arrived by this night, for both warehouses
            shutil.copytree(inputs, night_inputs)
            trace.append(f"night {night(i)} {changes}")
            seen.run(["run", "--date", night(i)], night_inputs)
            if i == 0:  # no backfill yet: the fresh world's first night is the seen world's, copied, not run again
                fresh.become_copy_of(seen)
            else:
                fresh.run(["run", "--date", night(i)], night_inputs)
            got, want = (mart_checksums(w.url, ignore=WALL_CLOCK) for w in (seen, fresh))
            differ = sorted(m for m in set(got) | set(want) if got.get(m) != want.get(m))
            assert not differ, (
                f"seed {seed}: after {trace[-1]} the marts differ from a fresh replay: "
                f"{differ}\nsequence:\n  " + "\n  ".join(trace)
            )
    finally:
        seen.drop()
        fresh.drop()


def test_plans_mix_nightlies_changes_and_backfills():
    for seed in range(50):
        steps = plan(seed)
        kinds = [s[0] for s in steps]
        assert kinds[0] == "night" and kinds[-1] == "night" and "backfill" in kinds
        assert all(
            s[1] <= max(n[1] for n in steps[:j] if n[0] == "night") for j, s in enumerate(steps) if s[0] == "backfill"
        )  # only dates that already ran
    changes = {c[0] for seed in range(50) for s in plan(seed) if s[0] == "night" for c in s[2]}
    assert changes == {"new_file", "correction", "revision"}


def test_nightly_after_any_sequence_equals_a_fresh_replay(warehouse_url, tmp_path):
    seeds = [int(os.environ.get("SS4GL_PROPERTY_SEED", "15"))]
    rnd = random.Random()
    seeds += [rnd.randrange(10**6) for _ in range(int(os.environ.get("SS4GL_PROPERTY_RUNS", "0")))]
    for seed in seeds:
        check_sequence(seed, warehouse_url, tmp_path / f"seed{seed}")
