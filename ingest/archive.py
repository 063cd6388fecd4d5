"""Content-addressed archive of every byte received from a source, stored exactly as received.

Layout: ``<archive>/sha256/ab/cdef…`` holds the body; ``<archive>/meta/<sha>/<fetch-id>.json`` records each time
those bytes were received (request URL, status, headers, fetched_at). Bodies are never overwritten: a body is
written only when its address is free (an atomic rename on a local folder; on object storage a conditional put
where the server honours it, after a check that the key is free), and an existing body is kept. Every read checks
the bytes against their address (sha256).

The archive lives in ``SS4GL_ARCHIVE`` when set, else in ``archive/`` of the storage (``ingest.storage``: the local
state folder by default, or object storage shared by every worker).
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

from ingest.storage import Storage, default_storage


class ArchiveError(RuntimeError):
    """The archive cannot store or find bytes (disk full, permission, missing object)."""


@dataclass(frozen=True)
class Received:
    """One body as received from a source, with its provenance."""

    body: bytes
    source: str  # "eurostat" or "surveys"
    url: str  # request URL or inbox path
    status: int | None = None
    headers: dict[str, str] = field(default_factory=dict)
    fetched_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat())


class _SourceError(Exception):
    """Reading the body to store failed (its ``__cause__``): not an archive failure."""


def _read_source(fileobj: BinaryIO, size: int) -> bytes:
    try:
        return fileobj.read(size)
    except OSError as exc:
        raise _SourceError from exc


class Archive:
    def __init__(self, root: Path | str | None = None) -> None:
        if root is not None:
            self.store = Storage(root)
        elif os.environ.get("SS4GL_ARCHIVE"):
            self.store = Storage(os.environ["SS4GL_ARCHIVE"])
        else:
            self.store = default_storage().child("archive")
        self.root = self.store.uri()  # where it is, for messages

    def _body_key(self, sha: str) -> tuple[str, str, str]:
        return ("sha256", sha[:2], sha[2:])

    def path_of(self, sha: str) -> Path:
        """The local file of a body (a local archive only)."""
        path = self.store.local_path(*self._body_key(sha))
        if path is None:
            raise ArchiveError(f"archive {self.root} is not a local folder")
        return path

    def has(self, sha: str) -> bool:
        try:
            return self.store.exists(*self._body_key(sha))
        except OSError as exc:
            raise ArchiveError(f"cannot read archive {self.root}: {exc.strerror or exc}") from exc

    def put(self, item: Received) -> str:
        """Store the body (if new) and a provenance record; return the body's sha256."""
        sha = hashlib.sha256(item.body).hexdigest()
        try:
            if self.store.local:
                target = self.path_of(sha)
                if not target.exists():
                    target.parent.mkdir(parents=True, exist_ok=True)
                    self._atomic_write(target, item.body)
            else:
                with tempfile.NamedTemporaryFile(prefix="ss4gl-archive-") as fh:
                    fh.write(item.body)
                    fh.flush()
                    self._put_once(Path(fh.name), sha, len(item.body))
            meta = {k: v for k, v in asdict(item).items() if k != "body"}
            meta.update(sha256=sha, size=len(item.body))
            self._write_meta(sha, meta)
        except OSError as exc:
            raise ArchiveError(f"cannot write to archive {self.root}: {exc.strerror or exc}") from exc
        return sha

    def put_stream(
        self,
        fileobj: BinaryIO,
        *,
        source: str,
        url: str,
        status: int | None = None,
        headers: dict[str, str] | None = None,
        fetched_at: str | None = None,
        chunk_size: int = 1 << 20,
    ) -> tuple[str, int]:
        """Store a body read from ``fileobj`` in chunks (bounded memory, any size) and a provenance record.

        The bytes are hashed while written to a temp file (beside the store when it is local, else a local scratch
        file), which then goes to its content address (write-once: an existing object is kept and the temp file
        dropped). Returns ``(sha256, size)``.
        """
        digest, size = hashlib.sha256(), 0
        try:
            scratch = self.store.local_path("sha256")
            if scratch is not None:
                scratch.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=scratch, prefix=".tmp-")
            try:
                with os.fdopen(fd, "wb") as fh:
                    while chunk := _read_source(fileobj, chunk_size):
                        digest.update(chunk)
                        fh.write(chunk)
                        size += len(chunk)
                    fh.flush()
                    os.fsync(fh.fileno())
                sha = digest.hexdigest()
                if self.store.local:
                    target = self.path_of(sha)
                    if target.exists():
                        Path(tmp).unlink()
                    else:
                        target.parent.mkdir(parents=True, exist_ok=True)
                        os.replace(tmp, target)
                else:
                    self._put_once(Path(tmp), sha, size)
            finally:
                Path(tmp).unlink(missing_ok=True)
            meta = {
                "source": source,
                "url": url,
                "status": status,
                "headers": dict(headers or {}),
                "fetched_at": fetched_at or datetime.now(UTC).isoformat(),
                "sha256": sha,
                "size": size,
            }
            self._write_meta(sha, meta)
        except _SourceError as exc:
            raise exc.__cause__ from None  # reading the source failed, not the archive
        except OSError as exc:
            raise ArchiveError(f"cannot write to archive {self.root}: {exc.strerror or exc}") from exc
        return sha, size

    def get(self, sha: str) -> bytes:
        """The body at ``sha``, checked against its address."""
        try:
            data = self.store.read_bytes(*self._body_key(sha))
        except FileNotFoundError as exc:
            raise ArchiveError(f"archive {self.root} has no object {sha}") from exc
        except OSError as exc:
            raise ArchiveError(f"cannot read archive {self.root}: {exc.strerror or exc}") from exc
        if hashlib.sha256(data).hexdigest() != sha:
            raise ArchiveError(f"archive {self.root}: object {sha} does not match its sha256 (corrupted)")
        return data

    def open(self, sha: str) -> _Verified:
        """The body at ``sha`` as a file object to read in pieces (a bulk file: never whole in memory); reading it
        to its end checks it against its address (ArchiveError when it does not match)."""
        try:
            return _Verified(self.store.open(*self._body_key(sha)), sha, self.root)
        except FileNotFoundError as exc:
            raise ArchiveError(f"archive {self.root} has no object {sha}") from exc
        except OSError as exc:
            raise ArchiveError(f"cannot read archive {self.root}: {exc.strerror or exc}") from exc

    def provenance(self, sha: str) -> list[dict]:
        records = [json.loads(self.store.fs.cat_file(key)) for key in self.store.glob("meta", sha, "*.json")]
        return sorted(records, key=lambda m: m["fetched_at"])

    def _put_once(self, local: Path, sha: str, size: int) -> None:
        """Object storage: put the body at its address unless one is there. An existing object is kept when its
        size matches (content addressing; every read verifies the hash); a different size is a corrupted object."""
        key = self._body_key(sha)
        if not self.store.exists(*key):
            try:
                self.store.put_file(local, *key, create=True)
                return
            except FileExistsError:
                pass  # another worker stored the same bytes meanwhile
        if self.store.size(*key) != size:
            raise ArchiveError(f"archive {self.root}: object {sha} exists with another size (corrupted)")

    def _write_meta(self, sha: str, meta: dict) -> None:
        data = json.dumps(meta, sort_keys=True).encode()
        name = f"{uuid.uuid4().hex}.json"
        meta_dir = self.store.local_path("meta", sha)
        if meta_dir is None:
            self.store.write_bytes(data, "meta", sha, name)
        else:
            meta_dir.mkdir(parents=True, exist_ok=True)
            self._atomic_write(meta_dir / name, data)

    @staticmethod
    def _atomic_write(target: Path, data: bytes) -> None:
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


class _Verified:
    """A stored body read in pieces, hashed as it is read; at its end the hash must be its address."""

    def __init__(self, fh: BinaryIO, sha: str, root: str) -> None:
        self.fh, self.sha, self.root, self.digest = fh, sha, root, hashlib.sha256()

    def read(self, size: int = -1) -> bytes:
        data = self.fh.read(size)
        self.digest.update(data)
        if (not data and size != 0) and self.digest.hexdigest() != self.sha:
            raise ArchiveError(f"archive {self.root}: object {self.sha} does not match its sha256 (corrupted)")
        return data

    def __enter__(self) -> _Verified:
        return self

    def __exit__(self, *exc: object) -> None:
        self.fh.close()
