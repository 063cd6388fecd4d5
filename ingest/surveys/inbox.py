"""Survey landing inbox on any fsspec filesystem: ``<inbox>/<cluster>/<instrument>/<file>``.

Files that cannot be attributed (wrong depth, unknown cluster folder or instrument) are listed with problems
so the caller quarantines them; ``write_reason`` writes a machine-readable ``<file>.quarantine.json`` beside.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import posixpath
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import fsspec

from ingest.config import Catalogue, load_catalogue
from ingest.storage import storage_options
from ingest.surveys.privacy import known
from ingest.surveys.problems import Problem, make_problem

log = logging.getLogger(__name__)
QUARANTINE_SUFFIX = ".quarantine.json"
IGNORED_TOP_LEVEL = ("README.md", "README.txt", "README")


@dataclass(frozen=True)
class InboxFile:
    cluster: str | None
    instrument: str | None
    path: str  # local path, or the full URL (s3://…) on a remote filesystem; read() / write_reason() accept it
    name: str
    size: int
    problems: tuple[Problem, ...] = ()
    fs: Any = field(default=None, repr=False, compare=False)

    @property
    def ok(self) -> bool:
        return not any(p.severity == "error" for p in self.problems)

    @property
    def relative(self) -> str:
        return "/".join(x for x in (self.cluster, self.instrument, self.name) if x)


def list_inbox(url: str, catalogue: Catalogue | None = None) -> list[InboxFile]:
    """All candidate files of the inbox, sorted; misplaced files carry error problems."""
    catalogue = catalogue or load_catalogue()
    clusters = {c.id for c in catalogue.clusters}
    instruments = set(catalogue.sources["surveys"]["instruments"])
    fs, root = fsspec.core.url_to_fs(url, **storage_options(url))  # S3: the storage's credentials
    root = root.rstrip("/")
    if not fs.exists(root):
        return []
    out: list[InboxFile] = []
    for path, info in sorted(fs.find(root, detail=True).items()):
        if info.get("type", "file") != "file":
            continue
        rel = posixpath.relpath(path, root) if path.startswith(root) else path
        parts = rel.split("/")
        name = parts[-1]
        if name.endswith(QUARANTINE_SUFFIX) or any(p.startswith(".") for p in parts):
            continue
        if len(parts) == 1 and name in IGNORED_TOP_LEVEL:
            continue
        size = int(info.get("size") or 0)
        problems: list[Problem] = []
        cluster = parts[0] if len(parts) == 3 else None
        instrument = parts[1] if len(parts) == 3 else None
        if len(parts) != 3:
            problems.append(
                make_problem(
                    "error",
                    "wrong_depth",
                    rel,
                    "file is not at <cluster>/<instrument>/<file>",
                    expected="<cluster>/<instrument>/<file>",
                    found=known(rel),  # a path chosen by an operator (scrubbed), not a cell value
                )
            )
        else:
            if cluster not in clusters:
                problems.append(
                    make_problem(
                        "error",
                        "unknown_cluster_folder",
                        rel,
                        "cluster folder is not a cluster of catalogue.yml",
                        column="cluster folder",
                        expected=" / ".join(sorted(clusters)),
                        found=known(cluster),
                    )
                )
            if instrument not in instruments:
                problems.append(
                    make_problem(
                        "error",
                        "unknown_instrument",
                        rel,
                        "instrument folder is not a survey instrument",
                        column="instrument folder",
                        expected=" / ".join(sorted(instruments)),
                        found=known(instrument),
                    )
                )
        full = path if _is_local(fs) else fs.unstrip_protocol(path)
        out.append(InboxFile(cluster, instrument, full, name, size, tuple(problems), fs))
    return out


def _is_local(fs: Any) -> bool:
    protocol = fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]
    return protocol in ("file", "local")


def _fs_path(item: InboxFile | str) -> tuple[Any, str]:
    if isinstance(item, InboxFile) and item.fs is not None:
        fs = item.fs
        return fs, fs._strip_protocol(item.path)
    url = item.path if isinstance(item, InboxFile) else str(item)
    return fsspec.core.url_to_fs(url, **storage_options(url))


def read(item: InboxFile | str, max_bytes: int | None = None) -> bytes:
    """The file's bytes exactly as landed; with ``max_bytes``, at most ``max_bytes + 1`` of them (so that a
    file grown past the limit since it was listed shows as longer than the limit, without reading it all)."""
    if max_bytes is None:
        fs, path = _fs_path(item)
        return fs.cat_file(path)
    with open_file(item) as fh:
        return fh.read(max_bytes + 1)


def open_file(item: InboxFile | str) -> Any:
    """The landed file opened for binary reading (stream it: any size)."""
    fs, path = _fs_path(item)
    return fs.open(path, "rb")


def sha256_of(item: InboxFile | str, chunk_size: int = 1 << 20) -> str:
    """Content hash of a landed file, read in chunks (bounded memory)."""
    digest = hashlib.sha256()
    with open_file(item) as fh:
        while chunk := fh.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


def too_large(item: InboxFile, size: int, limit: int) -> Problem:
    """The ``file_too_large`` problem of a file over the size limit (it is archived, never parsed)."""
    return make_problem(
        "error",
        "file_too_large",
        item.relative or item.name,
        "file exceeds the configured size limit",
        expected=f"<= {limit} bytes",
        found=known(f"{size} bytes"),
    )


PROBLEM_KEYS = ("severity", "code", "file", "row", "column", "expected", "found", "message")


def quarantine_document(item: InboxFile | str, problems: Iterable[Problem | dict]) -> dict:
    """The JSON written beside a quarantined file: one entry per problem."""
    rows = [p.as_dict() if isinstance(p, Problem) else dict(p) for p in problems]
    return {
        "file": item.relative if isinstance(item, InboxFile) else posixpath.basename(str(item)),
        "cluster": item.cluster if isinstance(item, InboxFile) else None,
        "instrument": item.instrument if isinstance(item, InboxFile) else None,
        "problems": [{k: r.get(k) for k in PROBLEM_KEYS} for r in rows],
    }


def write_reason(item: InboxFile | str, problems: Iterable[Problem | dict]) -> str:
    """Write ``<file>.quarantine.json`` beside the file (an InboxFile or a path/URL); returns its path."""
    fs, path = _fs_path(item)
    target = path + QUARANTINE_SUFFIX
    doc = quarantine_document(item, problems)
    if isinstance(item, InboxFile) and doc["file"] == "":
        doc["file"] = item.name
    body = (json.dumps(doc, ensure_ascii=False, indent=2, sort_keys=True) + "\n").encode("utf-8")
    if _is_local(fs):
        _replace_local(target, body)
    else:
        fs.pipe_file(target, body)  # object stores have no symlinks
    return target


def _replace_local(target: str, body: bytes) -> None:
    """Write ``target`` without following a symlink at that name: a hidden temp file in the same folder, then
    ``os.replace``, which swaps the name itself (a symlink there becomes a regular file, its target untouched)."""
    folder = os.path.dirname(target) or "."
    tmp = os.path.join(folder, f".{os.path.basename(target)}.{secrets.token_hex(6)}.tmp")  # dot: list_inbox skips
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o666)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(body)
        if os.path.islink(target):
            log.warning("replacing the symlink at %s by a regular file (its target is left untouched)", target)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
