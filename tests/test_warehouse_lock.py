"""`ingest.warehouse.exclusive`: a warehouse-wide advisory lock that serialises overlapping work (dbt builds)."""

from __future__ import annotations

import threading
import time

from ingest.warehouse import ADMIN, connect, exclusive


def test_second_holder_waits_until_the_first_releases(fresh_db):
    events: list[str] = []
    first_in = threading.Event()

    def first() -> None:
        with exclusive("ss4gl.test_lock", fresh_db):
            events.append("first in")
            first_in.set()
            time.sleep(1.0)
            events.append("first out")

    def second() -> None:
        first_in.wait(10)
        with exclusive("ss4gl.test_lock", fresh_db):
            events.append("second in")

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert events == ["first in", "first out", "second in"]


def test_lock_is_released_with_the_connection_even_on_error(fresh_db):
    try:
        with exclusive("ss4gl.test_lock", fresh_db):
            raise RuntimeError("dbt build failed")
    except RuntimeError:
        pass
    conn = connect(fresh_db, role=ADMIN)
    with conn.cursor() as cur:
        cur.execute("select pg_try_advisory_lock(hashtextextended('ss4gl.test_lock', 0))")
        assert cur.fetchone()[0] is True
    conn.close()


def test_other_lock_names_do_not_wait(fresh_db):
    with exclusive("ss4gl.test_lock", fresh_db):
        started = time.perf_counter()
        with exclusive("ss4gl.other_lock", fresh_db):
            assert time.perf_counter() - started < 5
