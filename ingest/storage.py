"""Where tasks hand their outputs to each other: the archive, staged batches, dbt's artifacts and docs, GX Data Docs
and the dashboard. ``SS4GL_STORAGE`` is any fsspec URL: a local folder (default: the state folder, as always) or
object storage (``s3://bucket/prefix``) shared by every worker, so a task may run on another host, or in a fresh pod,
than the task before it.

S3 credentials, endpoint and region come from the standard AWS variables (``AWS_ACCESS_KEY_ID``,
``AWS_SECRET_ACCESS_KEY``, ``AWS_ENDPOINT_URL``, ``AWS_DEFAULT_REGION``, or a role: botocore's own chain), or from the
Airflow connection named by ``SS4GL_STORAGE_CONN_ID`` (type ``aws``: login/password are the key pair; extra
``endpoint_url``, ``region_name``). Layout under the root: ``archive/``, ``staging/``, ``dbt/target/``, ``docs/gx/``,
``dashboard/``.

Tasks that need a local folder (dbt, GX and the dashboard write files) work in the local state folder and publish
what they wrote with ``publish_dir``; with the default storage the two are the same folder and nothing is copied.
"""

from __future__ import annotations

import json
import os
from functools import cache
from pathlib import Path
from typing import BinaryIO

from ingest.config import state_dir


class StorageError(RuntimeError):
    """The storage cannot be reached or is misconfigured (one line; never a credential)."""


def storage_url() -> str:
    """``SS4GL_STORAGE``, else the local state folder."""
    return os.environ.get("SS4GL_STORAGE") or str(state_dir())


def _connection_options(conn_id: str) -> dict:
    """s3fs options from an Airflow connection of type aws: inside Airflow as Airflow resolves it (environment,
    secrets backends, metadata DB); outside, from ``AIRFLOW_CONN_<ID>`` (URI or JSON) without importing Airflow."""
    from ingest.warehouse_url import ConnectionFields, in_airflow

    if in_airflow():
        from airflow.sdk import Connection
        from airflow.sdk.exceptions import AirflowNotFoundException

        try:
            conn = Connection.get(conn_id)
        except AirflowNotFoundException:
            raise StorageError(f"SS4GL_STORAGE_CONN_ID names `{conn_id}`, a connection Airflow does not know") from None
    else:
        value = os.environ.get(f"AIRFLOW_CONN_{conn_id.upper()}")
        if not value:
            raise StorageError(f"SS4GL_STORAGE_CONN_ID names `{conn_id}` but AIRFLOW_CONN_{conn_id.upper()} is not set")
        conn = ConnectionFields.from_env_value(value, conn_id=conn_id)
    try:
        extra = json.loads(conn.extra) if conn.extra else {}
    except ValueError:
        raise StorageError(f"the Airflow connection `{conn_id}`: its extra is not JSON") from None
    options: dict = {}
    key = conn.login or extra.get("aws_access_key_id")
    secret = conn.password or extra.get("aws_secret_access_key")
    if key and secret:
        options.update(key=key, secret=secret)
    client: dict = {}
    if extra.get("endpoint_url"):
        client["endpoint_url"] = extra["endpoint_url"]
    if extra.get("region_name"):
        client["region_name"] = extra["region_name"]
    if client:
        options["client_kwargs"] = client
    return options


def storage_options(url: str) -> dict:
    """fsspec options for ``url``: local folders create their parents; S3 reads no stale listing (a write-once check
    must see another worker's object) and takes the connection's credentials when one is named."""
    protocol = url.split("://", 1)[0] if "://" in url else "file"
    if protocol in ("file", "local"):
        return {"auto_mkdir": True}
    options: dict = {}
    if protocol in ("s3", "s3a"):
        # No stale listing (a write-once check must see another worker's object); a filesystem of its own, so that
        # the endpoint and credentials of this moment's environment are the ones used.
        options.update(use_listings_cache=False, skip_instance_cache=True)
        if os.environ.get("SS4GL_STORAGE_CONN_ID"):
            options.update(_connection_options(os.environ["SS4GL_STORAGE_CONN_ID"]))
    return options


class Storage:
    """One storage root: keys are ``/``-joined paths below it."""

    def __init__(self, url: str | os.PathLike | None = None) -> None:
        import fsspec

        self.url = str(url) if url is not None else storage_url()
        try:
            self.fs, self.root = fsspec.core.url_to_fs(self.url, **storage_options(self.url))
        except (ImportError, ValueError) as exc:
            raise StorageError(f"storage {self.url}: {exc}") from None
        self.root = self.root.rstrip("/") or "/"

    @property
    def local(self) -> bool:
        from fsspec.implementations.local import LocalFileSystem

        return isinstance(self.fs, LocalFileSystem)

    def key(self, *parts: str) -> str:
        return "/".join([self.root, *(p.strip("/") for p in parts if p)])

    def uri(self, *parts: str) -> str:
        """Where a key is, for people and messages (a local path, or ``s3://bucket/...``)."""
        key = self.key(*parts)
        return key if self.local else self.fs.unstrip_protocol(key)

    def local_path(self, *parts: str) -> Path | None:
        return Path(self.key(*parts)) if self.local else None

    def child(self, *parts: str) -> Storage:
        """The storage rooted at a folder below this one (same filesystem and options)."""
        sub = object.__new__(Storage)
        sub.url, sub.fs, sub.root = self.uri(*parts), self.fs, self.key(*parts)
        return sub

    def exists(self, *parts: str) -> bool:
        return self.fs.exists(self.key(*parts))

    def size(self, *parts: str) -> int:
        return int(self.fs.size(self.key(*parts)))

    def read_bytes(self, *parts: str) -> bytes:
        return self.fs.cat_file(self.key(*parts))

    def open(self, *parts: str, mode: str = "rb") -> BinaryIO:
        return self.fs.open(self.key(*parts), mode)

    def write_bytes(self, data: bytes, *parts: str) -> None:
        self.fs.pipe_file(self.key(*parts), data)

    def put_file(self, local: Path, *parts: str, create: bool = False) -> None:
        """Copy a local file to a key; ``create``: only if the key does not exist yet (a conditional put where the
        server supports it; FileExistsError when it exists)."""
        key = self.key(*parts)
        if create and not self.local:
            try:
                self.fs.put_file(str(local), key, mode="create")
            except OSError as exc:
                if "PreconditionFailed" in str(exc) or "412" in str(exc) or isinstance(exc, FileExistsError):
                    raise FileExistsError(key) from None
                raise
            return
        self.fs.put_file(str(local), key)

    def glob(self, *parts: str) -> list[str]:
        return sorted(self.fs.glob(self.key(*parts)))

    def remove(self, *parts: str) -> None:
        key = self.key(*parts)
        if self.fs.exists(key):
            self.fs.rm_file(key)

    def same_place(self, local_dir: Path, *parts: str) -> bool:
        return self.local and Path(self.key(*parts)).resolve() == Path(local_dir).resolve()

    def publish_dir(self, local_dir: Path, *parts: str, names: tuple[str, ...] = ()) -> str:
        """Copy what a task wrote into ``local_dir`` (only the top-level files ``names``, if given) to the folder
        ``parts`` (files of the same name replaced, others kept); return where it is. Nothing to copy when the
        storage is that folder (the default)."""
        if not self.same_place(local_dir, *parts):
            paths = [Path(local_dir) / n for n in names] if names else sorted(Path(local_dir).rglob("*"))
            for path in paths:
                if path.is_file():
                    self.fs.put_file(str(path), self.key(*parts, path.relative_to(local_dir).as_posix()))
        return self.uri(*parts)


@cache
def _default(url: str) -> Storage:
    return Storage(url)


def default_storage() -> Storage:
    """The storage of ``SS4GL_STORAGE`` (one instance per URL in a process)."""
    return _default(storage_url())
