"""Content-addressed archive of every byte received from a source, stored exactly as received.

Layout: ``<archive>/sha256/ab/cdef…`` holds the body; ``<archive>/meta/<sha>/<fetch-id>.json`` records each time
those bytes were received (request URL, status, headers, fetched_at). Bodies are never overwritten.
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

from ingest.config import archive_dir


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
    def __init__(self, root: Path | None = None) -> None:
        self.root = Path(root) if root is not None else archive_dir()

    def path_of(self, sha: str) -> Path:
        return self.root / "sha256" / sha[:2] / sha[2:]

    def put(self, item: Received) -> str:
        """Store the body (if new) and a provenance record; return the body's sha256."""
        sha = hashlib.sha256(item.body).hexdigest()
        target = self.path_of(sha)
        try:
            if not target.exists():
                target.parent.mkdir(parents=True, exist_ok=True)
                self._atomic_write(target, item.body)
            meta = {k: v for k, v in asdict(item).items() if k != "body"}
            meta.update(sha256=sha, size=len(item.body))
            meta_dir = self.root / "meta" / sha
            meta_dir.mkdir(parents=True, exist_ok=True)
            self._atomic_write(meta_dir / f"{uuid.uuid4().hex}.json", json.dumps(meta, sort_keys=True).encode())
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

        The bytes are hashed while written to a temp file beside the store, which is then renamed to its
        content address (write-once: an existing object is kept and the temp file dropped). Returns
        ``(sha256, size)``.
        """
        digest, size = hashlib.sha256(), 0
        staging = self.root / "sha256"
        try:
            staging.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=staging, prefix=".tmp-")
            try:
                with os.fdopen(fd, "wb") as fh:
                    while chunk := _read_source(fileobj, chunk_size):
                        digest.update(chunk)
                        fh.write(chunk)
                        size += len(chunk)
                    fh.flush()
                    os.fsync(fh.fileno())
                sha = digest.hexdigest()
                target = self.path_of(sha)
                if target.exists():
                    Path(tmp).unlink()
                else:
                    target.parent.mkdir(parents=True, exist_ok=True)
                    os.replace(tmp, target)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
            meta = {
                "source": source,
                "url": url,
                "status": status,
                "headers": dict(headers or {}),
                "fetched_at": fetched_at or datetime.now(UTC).isoformat(),
                "sha256": sha,
                "size": size,
            }
            meta_dir = self.root / "meta" / sha
            meta_dir.mkdir(parents=True, exist_ok=True)
            self._atomic_write(meta_dir / f"{uuid.uuid4().hex}.json", json.dumps(meta, sort_keys=True).encode())
        except _SourceError as exc:
            raise exc.__cause__ from None  # reading the source failed, not the archive
        except OSError as exc:
            raise ArchiveError(f"cannot write to archive {self.root}: {exc.strerror or exc}") from exc
        return sha, size

    def get(self, sha: str) -> bytes:
        try:
            return self.path_of(sha).read_bytes()
        except FileNotFoundError as exc:
            raise ArchiveError(f"archive {self.root} has no object {sha}") from exc

    def provenance(self, sha: str) -> list[dict]:
        meta_dir = self.root / "meta" / sha
        if not meta_dir.is_dir():
            return []
        return sorted((json.loads(p.read_text()) for p in meta_dir.glob("*.json")), key=lambda m: m["fetched_at"])

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
