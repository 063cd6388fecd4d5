"""``ss4gl ui``: Airflow's API server and web UI on the local Airflow home of ``ss4gl run`` / ``ss4gl backfill``.

Local runs and backfills (``dag.test``) write their DAG runs and task instances to the local metadata DB (SQLite
under the state folder, :func:`ingest.localrun.airflow_env`); this command serves that DB so they can be browsed.

- Loopback only: the server listens on 127.0.0.1 (``--port``, default 8080). A port already taken is an error
  in one line, before anything else is done.
- Login: Airflow's SimpleAuthManager with one user, ``admin`` (role admin). Its password is generated on the first
  ``ss4gl ui`` and kept in ``<state>/secrets/airflow_ui_passwords.json`` (mode 0600, the JSON file the auth
  manager reads); the URL, user and password are printed before the server starts. Delete the file for a new one.
- The DAG: ``dag.test`` already writes the serialised DAG, but only when a run happens; before serving, the
  DAG folder is serialised again (``airflow dags reserialize``) so the UI lists ``ss4gl_nightly`` (with the
  current code and its trigger-form params) even before the first local run.
- Only the API server runs (no scheduler): runs triggered from the UI stay queued; use ``ss4gl run`` /
  ``ss4gl backfill``.

The server runs as a child process in its own session, its output in ``<state>/logs/airflow-ui.log``; Ctrl-C
(SIGINT) or SIGTERM is forwarded to it, and ``ss4gl ui`` exits 0 once it has stopped.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from ingest.config import DAG_ID, state_dir
from ingest.localrun import LocalRunError, airflow_env, prepare_airflow

HOST = "127.0.0.1"
DEFAULT_PORT = 8080
USER = "admin"
AUTH_MANAGER = "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
STARTUP_TIMEOUT = 180  # seconds until the server answers /api/v2/monitor/health
STOP_TIMEOUT = 20  # seconds between forwarding the stop signal and killing the server's process group
RESERIALIZE_TIMEOUT = 600


def passwords_file() -> Path:
    return state_dir() / "secrets" / "airflow_ui_passwords.json"


def ui_login() -> tuple[str, str]:
    """(user, password) of the local UI: generated once, kept in the state folder (0600), reused afterwards."""
    path = passwords_file()
    passwords = {}
    if path.exists():
        try:
            passwords = json.loads(path.read_text() or "{}")
        except ValueError:
            passwords = None
        if not isinstance(passwords, dict):
            raise LocalRunError(f"{path} is not a JSON object: delete it for a new password")
    if not passwords.get(USER):
        path.parent.mkdir(parents=True, exist_ok=True)
        os.chmod(path.parent, 0o700)
        passwords[USER] = secrets.token_urlsafe(18)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(json.dumps(passwords) + "\n")
    os.chmod(path, 0o600)
    return USER, str(passwords[USER])


def check_port(port: int) -> None:
    """Fail in one line when ``port`` on 127.0.0.1 cannot be bound (as the server binds it: SO_REUSEADDR)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise LocalRunError(f"port {port} on {HOST} is already in use: choose another with --port") from None
            raise LocalRunError(f"cannot listen on {HOST}:{port}: {exc.strerror or exc}") from None


def ui_env(port: int) -> dict[str, str]:
    """The API server's environment: the local Airflow home plus the loopback address and the login."""
    return {
        **os.environ,
        **airflow_env(),
        "AIRFLOW__API__HOST": HOST,
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__API__WORKERS": "1",
        # Always this login, whatever the environment says: it is the one printed.
        "AIRFLOW__CORE__AUTH_MANAGER": AUTH_MANAGER,
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{USER}:admin",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "False",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords_file()),
    }


def _last_line(text: str) -> str:
    lines = [ln.strip() for ln in (text or "").splitlines() if ln.strip()]
    return lines[-1] if lines else "no output"


def serialize_dags(env: dict[str, str]) -> None:
    """Serialise the DAG folder into the metadata DB; fail in one line when ``ss4gl_nightly`` is not there."""
    try:
        res = subprocess.run(
            [sys.executable, "-m", "airflow", "dags", "reserialize"],
            capture_output=True,
            text=True,
            env=env,
            timeout=RESERIALIZE_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise LocalRunError(f"airflow dags reserialize took more than {RESERIALIZE_TIMEOUT} s") from None
    if res.returncode != 0:
        raise LocalRunError(f"airflow dags reserialize failed: {_last_line(res.stderr or res.stdout)}")
    import sqlalchemy as sa

    engine = sa.create_engine(env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"])
    try:
        with engine.connect() as conn:
            found = conn.execute(
                sa.text("select count(*) from serialized_dag where dag_id = :d"), {"d": DAG_ID}
            ).scalar()
            error = None if found else conn.execute(sa.text("select stacktrace from import_error")).scalar()
    finally:
        engine.dispose()
    if not found:
        raise LocalRunError(f"{DAG_ID} could not be serialised: {_last_line(error or 'no import error recorded')}")


def _healthy(url: str) -> bool:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: never through a proxy
    try:
        with opener.open(f"{url}api/v2/monitor/health", timeout=2) as resp:
            return resp.status == 200
    except (urllib.error.URLError, OSError, ValueError):
        return False


def _kill_group(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


def _interrupt(_signum, _frame) -> None:
    raise KeyboardInterrupt  # SIGTERM while preparing: as Ctrl-C (subprocess.run stops its child)


def serve(port: int = DEFAULT_PORT) -> int:
    """Prepare the local Airflow home, print the URL and login, then run the API server until a signal stops it."""
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        return _serve(port)
    finally:
        signal.signal(signal.SIGTERM, previous)


def _serve(port: int) -> int:
    check_port(port)  # first: a taken port costs nothing
    user, password = ui_login()
    prepare_airflow()  # the local env in os.environ, the metadata DB migrated
    env = ui_env(port)
    print(f"serialising {DAG_ID} into the local Airflow metadata DB ...", flush=True)
    serialize_dags(env)

    url = f"http://{HOST}:{port}/"
    log_file = state_dir() / "logs" / "airflow-ui.log"
    log_file.parent.mkdir(parents=True, exist_ok=True)
    print(f"Airflow UI: {url}", flush=True)
    print(f"  login: user {user}  password {password}  (kept in {passwords_file()})", flush=True)
    print(f"  server log: {log_file}", flush=True)

    stop: list[int] = []
    proc: subprocess.Popen | None = None

    def on_signal(signum, _frame) -> None:
        stop.append(signum)
        if proc is not None and proc.poll() is None:
            _kill_group(proc.pid, signal.SIGTERM)  # uvicorn: graceful shutdown

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        with open(log_file, "wb") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "airflow", "api-server", "--host", HOST, "--port", str(port), "--workers", "1"],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # the terminal's Ctrl-C reaches us only; we forward it once
            )
        if stop:
            _kill_group(proc.pid, signal.SIGTERM)
        deadline, ready = time.monotonic() + STARTUP_TIMEOUT, False
        while not stop:
            try:
                proc.wait(timeout=0.5)
                break
            except subprocess.TimeoutExpired:
                pass
            if not ready and _healthy(url):
                ready = True
                print(f"serving on {url} (Ctrl-C to stop)", flush=True)
            elif not ready and time.monotonic() > deadline:
                print(f"warning: no answer from {url} after {STARTUP_TIMEOUT} s; see {log_file}", flush=True)
                deadline = float("inf")
        if stop:
            print("stopping the Airflow UI ...", flush=True)
            try:
                proc.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                _kill_group(proc.pid, signal.SIGKILL)
                proc.wait()
    finally:
        if proc is not None:
            _kill_group(proc.pid, signal.SIGKILL)  # anything the server left in its group
            if proc.poll() is None:
                proc.wait()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if stop:
        print("stopped", flush=True)
        return 0
    output = log_file.read_text(errors="replace")
    if "address already in use" in output.lower():
        raise LocalRunError(f"port {port} on {HOST} is already in use: choose another with --port")
    raise LocalRunError(f"the Airflow API server exited with {proc.returncode}: {_last_line(output)} (see {log_file})")


def _port(text: str) -> int:
    port = int(text)
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{port} is not a TCP port (1-65535)")
    return port


def _cmd_ui(args: argparse.Namespace) -> int:
    return serve(args.port)


def register(subparsers: argparse._SubParsersAction) -> None:
    ui = subparsers.add_parser(
        "ui", help="Airflow's web UI on 127.0.0.1 over the local runs and backfills (login printed at start)"
    )
    ui.add_argument("--port", type=_port, default=DEFAULT_PORT, help=f"port on 127.0.0.1 (default {DEFAULT_PORT})")
    ui.set_defaults(func=_cmd_ui)
