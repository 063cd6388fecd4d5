"""``ss4gl ui`` (#18.3): Airflow's API server and UI on the local Airflow home of ``ss4gl run`` / ``ss4gl backfill``.

Real processes: ``ss4gl ui`` in a throwaway state folder migrates the local metadata DB, serialises the DAG folder
and serves on a free loopback port; the test logs in with the login it printed (SimpleAuthManager's
``POST /auth/token``), reads the DAG and its details (the trigger form's params) through the REST API, stops it
with SIGINT and checks that nothing of it is left running. A port already taken fails in one line.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest
import requests

from ingest.config import DAG_ID
from ingest.orchestration import PARAMS

REPO = Path(__file__).resolve().parents[1]
SS4GL = [sys.executable, "-m", "ingest.cli"]
START_TIMEOUT = 420  # migrate + reserialize (Cosmos parses the dbt manifest) + api-server start, on 2 busy cores
STOP_TIMEOUT = 45


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(state: Path) -> dict[str, str]:
    """This process's environment with a state folder of its own and no Airflow setting (the local home's)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env.update(SS4GL_HOME=str(state), PYTHONUNBUFFERED="1")
    return env


class Output:
    """Lines of a pipe, read by a thread as they come."""

    def __init__(self, stream) -> None:
        self.lines: list[str] = []
        self._thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._thread.start()

    def _read(self, stream) -> None:
        for line in stream:
            self.lines.append(line.rstrip("\n"))

    def join(self) -> None:
        self._thread.join(timeout=10)

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


def _healthy(base: str) -> bool:
    try:
        return requests.get(f"{base}api/v2/monitor/health", timeout=2).ok
    except requests.RequestException:
        return False


@pytest.mark.slow
@pytest.mark.timeout(START_TIMEOUT + 300)
def test_ui_serves_the_local_airflow_home_behind_the_printed_login(tmp_path):
    port = _free_port()
    state = tmp_path / "state"
    proc = subprocess.Popen(
        SS4GL + ["ui", "--port", str(port)],
        env=_env(state),
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    out, err = Output(proc.stdout), Output(proc.stderr)
    family: list[psutil.Process] = []
    try:
        base = f"http://127.0.0.1:{port}/"
        deadline = time.monotonic() + START_TIMEOUT
        while not _healthy(base):
            assert proc.poll() is None, f"ss4gl ui exited with {proc.returncode}:\n{out.text}\n{err.text[-3000:]}"
            assert time.monotonic() < deadline, f"no answer on {base} after {START_TIMEOUT} s:\n{out.text}"
            time.sleep(1)

        # The URL and the login, printed before the server started.
        assert f"Airflow UI: {base}" in out.lines, out.text
        login = re.search(r"login: user (\S+)\s+password (\S+)", out.text)
        assert login, out.text
        user, password = login.groups()
        assert user == "admin"
        secrets_file = state / "secrets" / "airflow_ui_passwords.json"
        assert stat.S_IMODE(secrets_file.stat().st_mode) == 0o600
        assert stat.S_IMODE(secrets_file.parent.stat().st_mode) == 0o700
        assert password in secrets_file.read_text()

        # Loopback only: every listening socket of the server is on 127.0.0.1.
        family = psutil.Process(proc.pid).children(recursive=True)
        assert family, "ss4gl ui runs the API server as a child process"
        listening = [c.laddr for p in family for c in p.net_connections(kind="inet") if c.status == psutil.CONN_LISTEN]
        assert ("127.0.0.1", port) in [(a.ip, a.port) for a in listening], listening
        assert all(a.ip == "127.0.0.1" for a in listening), listening

        # No way in without the login; the printed one works.
        assert requests.get(f"{base}api/v2/dags/{DAG_ID}", timeout=10).status_code == 401
        wrong = requests.post(f"{base}auth/token", json={"username": user, "password": "x" + password}, timeout=10)
        assert wrong.status_code == 401, wrong.text
        res = requests.post(f"{base}auth/token", json={"username": user, "password": password}, timeout=10)
        assert res.status_code == 201, res.text
        auth = {"Authorization": f"Bearer {res.json()['access_token']}"}

        dag = requests.get(f"{base}api/v2/dags/{DAG_ID}", headers=auth, timeout=10)
        assert dag.status_code == 200, dag.text
        assert dag.json()["dag_id"] == DAG_ID
        details = requests.get(f"{base}api/v2/dags/{DAG_ID}/details", headers=auth, timeout=10)
        assert details.status_code == 200, details.text
        params = details.json()["params"]
        assert set(PARAMS) <= set(params), params
        for name, (default, text) in PARAMS.items():
            assert params[name]["value"] is default, params[name]
            assert params[name]["description"] == text, params[name]
            assert params[name]["schema"]["type"] == "boolean", params[name]
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)  # what Ctrl-C sends
        try:
            rc = proc.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            for p in [*family, psutil.Process(proc.pid)]:
                try:
                    p.kill()
                except psutil.Error:
                    pass
            proc.wait(timeout=10)
            raise AssertionError(f"ss4gl ui did not stop within {STOP_TIMEOUT} s of SIGINT:\n{out.text}") from None
    out.join()
    err.join()
    assert rc == 0, f"exit {rc}:\n{out.text}\n{err.text[-3000:]}"
    assert "stopped" in out.lines, out.text
    _, alive = psutil.wait_procs(family, timeout=5)
    assert not alive, f"left running after ss4gl ui stopped: {alive}"
    with socket.socket() as s:  # the port is free again
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", port))


def test_ui_on_a_taken_port_fails_in_one_line(tmp_path):
    state = tmp_path / "state"
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        res = subprocess.run(
            SS4GL + ["ui", "--port", str(port)],
            env=_env(state),
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    assert res.returncode != 0
    assert "Traceback" not in res.stdout + res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and f"port {port}" in lines[0] and "already in use" in lines[0], res.stderr
    assert "password" not in res.stdout  # it failed before anything else
    assert not (state / "airflow").exists()


def test_the_generated_login_is_kept_and_private(tmp_path, monkeypatch):
    from ingest.ui import passwords_file, ui_login

    monkeypatch.setenv("SS4GL_HOME", str(tmp_path / "state"))
    user, password = ui_login()
    assert (user, len(password)) == ("admin", 24)
    assert ui_login() == (user, password)  # generated once, then reused
    assert stat.S_IMODE(passwords_file().stat().st_mode) == 0o600
    assert stat.S_IMODE(passwords_file().parent.stat().st_mode) == 0o700
