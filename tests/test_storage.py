"""SS4GL_STORAGE (#16.1): the archive, staged batches and published docs on any fsspec URL, here a real S3 API server
on loopback (moto's standalone server); the local state folder by default."""

from __future__ import annotations

import hashlib
import io
import json
import uuid

import pandas as pd
import pytest

from ingest.archive import Archive, ArchiveError, Received
from ingest.config import state_dir
from ingest.storage import Storage, StorageError, default_storage
from ingest.tasks.common import Batch, RunContext, stage_done, stage_read, stage_remove, stage_write
from tests.s3server import S3Server


@pytest.fixture(scope="module")
def s3():
    with S3Server() as server:
        yield server


@pytest.fixture
def s3_storage(s3, monkeypatch):
    """SS4GL_STORAGE on a fresh bucket of the S3 server, credentials and endpoint from the AWS variables."""
    for key, value in s3.env.items():
        monkeypatch.setenv(key, value)
    bucket = s3.bucket(f"ss4gl-{uuid.uuid4().hex[:8]}")
    monkeypatch.setenv("SS4GL_STORAGE", f"s3://{bucket}/state")
    return bucket


def test_default_storage_is_the_local_state_folder(monkeypatch, tmp_path):
    monkeypatch.delenv("SS4GL_STORAGE", raising=False)
    monkeypatch.delenv("SS4GL_ARCHIVE", raising=False)
    monkeypatch.setenv("SS4GL_HOME", str(tmp_path / "home"))
    store = default_storage()
    assert store.local and store.root == str(state_dir())
    archive = Archive()
    sha = archive.put(Received(b"local body", source="surveys", url="inbox/x.csv"))
    assert archive.path_of(sha) == tmp_path / "home" / "archive" / "sha256" / sha[:2] / sha[2:]
    # docs written in the state folder are already where they are published: nothing is copied
    docs = state_dir() / "docs" / "gx"
    docs.mkdir(parents=True)
    (docs / "index.html").write_text("<html>")
    assert store.same_place(docs, "docs", "gx")
    assert store.publish_dir(docs, "docs", "gx") == str(docs)


def test_archive_on_s3_is_content_addressed_write_once_and_verified(s3, s3_storage):
    archive = Archive()
    assert archive.root == f"s3://{s3_storage}/state/archive"
    body = b"geo\\time\t2024\nES\t1\n"
    sha = archive.put(Received(body, source="eurostat", url="https://example.invalid/a", status=200))
    assert sha == hashlib.sha256(body).hexdigest()
    key = f"state/archive/sha256/{sha[:2]}/{sha[2:]}"
    client = s3.client()
    first = client.head_object(Bucket=s3_storage, Key=key)
    assert archive.put(Received(body, source="eurostat", url="https://example.invalid/b")) == sha
    again = client.head_object(Bucket=s3_storage, Key=key)
    assert again["LastModified"] == first["LastModified"] and again["ETag"] == first["ETag"]  # never rewritten
    assert [p["url"] for p in archive.provenance(sha)] == ["https://example.invalid/a", "https://example.invalid/b"]
    assert archive.get(sha) == body and archive.has(sha) and not archive.has("0" * 64)

    big = bytes(range(256)) * 12_000  # 3 MB, streamed in 1 MB chunks through a local scratch file
    big_sha, size = archive.put_stream(io.BytesIO(big), source="surveys", url="inbox/big.xlsx")
    assert (big_sha, size) == (hashlib.sha256(big).hexdigest(), len(big))
    assert archive.get(big_sha) == big
    assert archive.put_stream(io.BytesIO(big), source="surveys", url="inbox/big-again.xlsx") == (big_sha, size)
    assert len(archive.provenance(big_sha)) == 2

    # A corrupted object (someone overwrote it) is refused on read, in one line.
    client.put_object(Bucket=s3_storage, Key=key, Body=b"tampered")
    with pytest.raises(ArchiveError, match="does not match its sha256"):
        archive.get(sha)
    # ... and a write of the same content finds an object of another size: refused, not overwritten.
    with pytest.raises(ArchiveError, match="exists with another size"):
        archive.put(Received(body, source="eurostat", url="https://example.invalid/c"))
    assert client.get_object(Bucket=s3_storage, Key=key)["Body"].read() == b"tampered"
    with pytest.raises(ArchiveError, match="has no object"):
        archive.get("f" * 64)


def test_conditional_put_never_replaces_an_object(s3, s3_storage, tmp_path):
    store = Storage()
    src = tmp_path / "a.bin"
    src.write_bytes(b"first")
    store.put_file(src, "x", "a.bin", create=True)
    src.write_bytes(b"second")
    with pytest.raises(FileExistsError):
        store.put_file(src, "x", "a.bin", create=True)
    assert store.read_bytes("x", "a.bin") == b"first"


def test_staged_batch_round_trip_on_s3(s3, s3_storage):
    ctx = RunContext(run_id="manual__2026-11-26T00:30:00+00:00", logical_date="2026-11-26")
    batch = Batch(source="eurostat", object="nama_10r_2gdp", sha256=["ab" * 32])
    frame = pd.DataFrame({"geo": ["ES51", "FR71"], "value": [1.5, None]})
    stage_write(frame, batch, "eurostat_observations", ctx)
    keys = s3.keys(s3_storage, "state/staging/")
    assert len(keys) == 1 and keys[0].endswith("__eurostat_observations.parquet")
    pd.testing.assert_frame_equal(stage_read(batch, "eurostat_observations", ctx), frame)
    stage_remove(batch, "eurostat_observations", ctx)
    stage_done(ctx)
    assert s3.keys(s3_storage, "state/staging/") == []


def test_published_docs_are_copied_to_s3(s3, s3_storage, tmp_path):
    local = tmp_path / "target"
    (local / "compiled").mkdir(parents=True)
    for name in ("index.html", "manifest.json", "catalog.json"):
        (local / name).write_text(name)
    (local / "compiled" / "model.sql").write_text("select 1")
    where = default_storage().publish_dir(local, "dbt", "target", names=("index.html", "manifest.json", "gone.json"))
    assert where == f"s3://{s3_storage}/state/dbt/target"
    assert s3.keys(s3_storage, "state/dbt/") == ["state/dbt/target/index.html", "state/dbt/target/manifest.json"]
    default_storage().publish_dir(local, "dashboard")
    assert "state/dashboard/compiled/model.sql" in s3.keys(s3_storage, "state/dashboard/")


def test_storage_credentials_from_an_airflow_connection(s3, monkeypatch):
    """SS4GL_STORAGE_CONN_ID: key pair, endpoint and region from an Airflow connection of type aws (here its
    AIRFLOW_CONN_ form, as outside a task), with no AWS variable set."""
    bucket = s3.bucket(f"ss4gl-{uuid.uuid4().hex[:8]}")
    for key in s3.env:
        monkeypatch.delenv(key, raising=False)
    conn = {
        "conn_type": "aws",
        "login": "testing",
        "password": "testing",
        "extra": {"endpoint_url": s3.endpoint, "region_name": "us-east-1"},
    }
    monkeypatch.setenv("AIRFLOW_CONN_OBJECT_STORE", json.dumps(conn))
    monkeypatch.setenv("SS4GL_STORAGE_CONN_ID", "object_store")
    store = Storage(f"s3://{bucket}/p")
    store.write_bytes(b"through the connection", "k.txt")
    assert s3.keys(bucket) == ["p/k.txt"]
    assert store.read_bytes("k.txt") == b"through the connection"

    monkeypatch.setenv("SS4GL_STORAGE_CONN_ID", "no_such_conn")
    with pytest.raises(StorageError, match="AIRFLOW_CONN_NO_SUCH_CONN is not set"):
        Storage(f"s3://{bucket}/p")
