"""Statistics stage of the nightly run: plan (change detection) → extract + archive → validate → load.

Eurostat's datasets (change detection by its table of contents) and the SDMX datasets of other providers
(catalogue ``sdmx_datasets``: fetched every run, loaded when their observations changed, since SDMX web services
publish no table of contents) go through the same stage, the same gate and the same raw table, each batch named by
its dataset's catalogue code."""

from __future__ import annotations

import json
from datetime import date
from typing import TYPE_CHECKING

from ingest.archive import Archive, Received
from ingest.config import Catalogue, EurostatDataset, SdmxDataset, load_catalogue
from ingest.eurostat.columns import NON_DIMENSION_COLUMNS, dimension_columns
from ingest.tasks.common import (
    Batch,
    RunContext,
    log,
    record_batch,
    record_check,
    record_fetch,
    record_quarantine,
    record_receipt,
)
from ingest.warehouse import LOADER, connect

if TYPE_CHECKING:  # pandas is imported by the tasks that decode, not by plan (a no-change night decodes nothing)
    import pandas as pd

SOURCE = "eurostat"


def _client(on_response=None):
    from ingest.eurostat.client import EurostatClient

    cfg = load_catalogue().eurostat
    return EurostatClient(cfg["base_url"], on_response=on_response, timeout=cfg.get("timeout_seconds", 60))


def _archiving(ctx: RunContext, obj: str, archive: Archive, sink: list[tuple[Received, str]]):
    def on_response(item: Received) -> None:
        sink.append((item, archive.put(item)))

    return on_response


def _record_fetches(ctx: RunContext, obj: str, sink: list[tuple[Received, str]]) -> None:
    if not sink:
        return
    with connect(role=LOADER) as conn, conn.cursor() as cur:
        for item, sha in sink:
            record_fetch(cur, ctx, SOURCE, obj, item.url, item.status, sha, len(item.body))
    conn.close()


def plan(ctx: RunContext, catalogue: Catalogue | None = None, *, last_try: bool = True, alert=None) -> list[str]:
    """Read the table of contents once; return the datasets to fetch and record why each is fetched or skipped.

    Eurostat unreachable past the client's retries: raise (the task's retry tries again), except on the task's
    last try, where every Eurostat dataset is checked ``error`` with the reason (the run then fails, and ``alert`` is
    called with one line) while the SDMX datasets of other providers are still fetched: one source's outage never
    keeps another from loading."""
    from ingest.eurostat.errors import EurostatError

    catalogue = catalogue or load_catalogue()
    archive, sink = Archive(), []
    outage = None
    try:
        toc = _client(_archiving(ctx, "toc", archive, sink)).toc()
    except EurostatError as exc:
        if not last_try:
            raise
        toc, outage = {}, f"table of contents unreachable ({exc}): not fetched tonight, tried again next run"
        if alert is not None:
            alert(f"eurostat {outage}")
    finally:
        _record_fetches(ctx, "toc", sink)
    conn = connect(role=LOADER)
    to_fetch: list[str] = []
    with conn, conn.cursor() as cur:
        cur.execute("select object, toc_last_update from audit.source_state where source = %s", (SOURCE,))
        loaded = dict(cur.fetchall())
        held = quarantined_versions(cur)
        for ds in catalogue.datasets:
            entry = toc.get(ds.code)
            toc_date: date | None = entry.last_update if entry else None
            if outage:
                decision, reason = "error", outage
            elif toc_date is not None and held.get(ds.code) == toc_date.isoformat():
                decision = "skip"
                reason = (
                    f"quarantined, unchanged since (table of contents: {toc_date}); retried when Eurostat"
                    f" updates it or after `ss4gl quarantine release eurostat {ds.code}`"
                )
            elif entry is None:
                decision, reason = "fetch", "not listed in the table of contents: fetching to check"
            elif ds.code not in loaded:
                decision, reason = "fetch", "never loaded"
            elif toc_date is None or loaded[ds.code] is None or toc_date > loaded[ds.code]:
                decision = "fetch"
                reason = f"table of contents shows an update on {toc_date} (loaded: {loaded[ds.code]})"
            else:
                decision, reason = "skip", f"unchanged since last load (table of contents: {toc_date})"
            record_check(cur, ctx, SOURCE, ds.code, decision, reason, toc_last_update=toc_date)
            log.info("eurostat %s: %s (%s)", ds.code, decision, reason)
            if decision == "fetch":
                to_fetch.append(ds.code)
        providers = {p.id for p in catalogue.sdmx_providers}
        for sdmx in catalogue.sdmx_datasets:
            decision = "skip"
            if sdmx.code in to_fetch or any(d.code == sdmx.code for d in catalogue.datasets):
                reason = "listed as a Eurostat dataset too (ss4gl catalogue check): fetched from Eurostat only"
            elif sdmx.provider not in providers:
                reason = f"unknown SDMX provider {sdmx.provider} (ss4gl catalogue check)"
            else:
                decision, reason = (
                    "fetch",
                    (
                        f"SDMX provider {sdmx.provider} publishes no table of contents: fetched every run, loaded when"
                        " its observations changed"
                    ),
                )
                to_fetch.append(sdmx.code)
            record_check(cur, ctx, SOURCE, sdmx.code, decision, reason)
            log.info("sdmx %s: %s (%s)", sdmx.code, decision, reason)
    conn.close()
    return to_fetch


def quarantined_versions(cur) -> dict[str, str | None]:
    """Per dataset whose latest batch is quarantined (and not released): the TOC date it was fetched for."""
    cur.execute(
        "select distinct on (object) object, status, meta->>'toc_last_update' from audit.batches"
        " where source = %s order by object, updated_at desc",
        (SOURCE,),
    )
    return {obj: toc for obj, status, toc in cur.fetchall() if status == "quarantined"}


def extract(ctx: RunContext, code: str, catalogue: Catalogue | None = None) -> dict:
    """Fetch one dataset (every part), archive every body as received, register the batch as received.

    A bulk dataset (catalogue ``bulk: true``), or one the Statistics API refuses as EXTRACTION_TOO_BIG even split
    by geo, comes from Eurostat's bulk file instead, streamed to the archive (``tasks.bulk``).

    A body that is not data (an error, an HTML page, an over-size or truncated body past the retries) is
    archived and quarantines this dataset's batch; the task succeeds (a data problem, not a broken run).
    Content identical to a batch quarantined before stays quarantined (not validated again).
    """
    from ingest.eurostat.errors import EurostatPayloadError, ExtractionTooBig

    catalogue = catalogue or load_catalogue()
    sdmx = catalogue.sdmx_dataset(code) if not any(d.code == code for d in catalogue.datasets) else None
    archive, sink = Archive(), []
    problem = dsd = bulk_got = None
    try:
        if sdmx is None and catalogue.dataset(code).bulk:  # streamed to the archive, never in memory (tasks.bulk)
            parts, bulk_got = [], _bulk(ctx, code, archive, catalogue)
            _bulk_check(code, bulk_got, archive)
        elif sdmx is not None:
            from ingest.sdmx.client import SdmxClient

            client = SdmxClient(
                catalogue.sdmx_provider(sdmx.provider),
                on_response=_archiving(ctx, code, archive, sink),
                timeout=catalogue.eurostat.get("timeout_seconds", 60),
                max_body_bytes=int(catalogue.limits("sdmx")["max_body_bytes"]),
            )
            parts = [client.fetch(sdmx)]
            dsd = _structure(client, sdmx, parts[0].body)
        else:
            ds: EurostatDataset = catalogue.dataset(code)
            try:
                parts = _client(_archiving(ctx, code, archive, sink)).fetch_jsonstat(
                    code, ds.filters, catalogue.geo_codes(ds), catalogue.eurostat.get("since_time_period")
                )
            except ExtractionTooBig as exc:  # too big for the Statistics API even split by geo: the bulk file
                log.info("eurostat %s: %s: taking Eurostat's bulk file instead", code, exc)
                parts, bulk_got = [], _bulk(ctx, code, archive, catalogue)
                _bulk_check(code, bulk_got, archive)
    except (EurostatPayloadError, ExtractionTooBig) as exc:
        parts = [item for item, _sha in sink]
        kind = getattr(exc, "kind", "too_big")
        problem = {
            "code": f"body_{kind}",
            "severity": "error",
            "file": code,
            "row": None,
            "column": None,
            "message": f"{code}: row -, column -: {getattr(exc, 'problem', None) or exc}",
        }
    finally:
        _record_fetches(ctx, code, sink)
    shas = list(dict.fromkeys(archive.put(p) for p in parts))  # put() is idempotent and records provenance
    if bulk_got is not None:
        shas = [bulk_got.sha256]
    batch = Batch(source=SOURCE, object=code, sha256=shas)
    if bulk_got is not None:  # how to read it, kept with the batch: a replay selects what this night did
        from ingest.tasks.bulk import selection

        batch.meta.update(bulk=True, selection=selection(catalogue, code))
    if sdmx is not None:  # how to read it, kept with the batch: a replay reads it the same way whatever the catalogue
        batch.meta["sdmx"] = sdmx_reading(sdmx, parts if problem is None else [], dsd)
    conn = connect(role=LOADER)
    with conn, conn.cursor() as cur:
        if sdmx is not None and problem is None and _unchanged(cur, code, batch.meta["sdmx"]["content"]):
            reason = "fetched: the observations are those loaded last (only the message header differs): not loaded"
            record_check(cur, ctx, SOURCE, code, "skip", reason)
            log.info("sdmx %s: %s", code, reason)
            batch.status = "unchanged"
        else:
            _register(cur, ctx, batch, problem)
    conn.close()
    return {
        "batch_id": batch.batch_id,
        "parts": len(shas),
        "bytes": bulk_got.size if bulk_got is not None else sum(len(p.body) for p in parts),
        "status": batch.status,
    }


def _bulk(ctx: RunContext, code: str, archive: Archive, catalogue: Catalogue):
    """The dataset's bulk file streamed into the archive (tasks.bulk)."""
    from ingest.tasks import bulk

    return bulk.extract(ctx, code, archive, _client(), catalogue)


def _bulk_check(code: str, got, archive: Archive) -> None:
    """EurostatPayloadError when the stored bulk body is not data (the batch keeps naming the stored file)."""
    from ingest.tasks import bulk

    bulk.check_received(code, got, archive)


def _register(cur, ctx: RunContext, batch: Batch, problem: dict | None) -> None:
    """Record a received batch (quarantined at once with ``problem``) and its receipt for this run's date."""
    cur.execute(
        "select toc_last_update from audit.dataset_checks where run_id = %s and source = %s and object = %s",
        (ctx.run_id, SOURCE, batch.object),
    )
    row = cur.fetchone()
    batch.meta["toc_last_update"] = row[0].isoformat() if row and row[0] else None
    cur.execute("select status from audit.batches where batch_id = %s", (batch.batch_id,))
    before = cur.fetchone()
    if problem is not None:
        batch.status, batch.reason = "quarantined", problem["message"]
        record_quarantine(cur, batch, [problem])
        log.warning("eurostat %s: quarantined at extract (%s)", batch.object, problem["message"])
    if before and before[0] == "quarantined" and problem is None:
        log.info("eurostat %s: same content as a quarantined batch: stays quarantined", batch.object)
    else:
        record_batch(cur, ctx, batch)
    record_receipt(cur, ctx, batch)


def sdmx_reading(dataset: SdmxDataset, parts: list[Received], dsd: tuple | None = None) -> dict:
    """How an SDMX batch is read (its geo dimension; the structure's dimensions: configured, else those of the DSD
    fetched with it, ``dsd`` = (Dsd, its body's sha256)) and the digest of its observations (the bodies without
    their message headers)."""
    import hashlib

    from ingest.sdmx.decode import content_digest

    digests = "".join(content_digest(p.body) for p in parts)
    structure, structure_sha = dsd if dsd else (None, None)
    return {
        "geo": dataset.geo,
        "dimensions": list(structure.dimensions if structure else dataset.dimensions),
        "time_dimension": (structure.time if structure else None) or dataset.time_dimension,
        "structure": structure_sha,
        "content": hashlib.sha256(digests.encode()).hexdigest() if parts else None,
    }


def _structure(client, dataset: SdmxDataset, body: bytes) -> tuple | None:
    """(Dsd, sha256 of its body) for a structure-specific answer without ``dimensions`` in the catalogue: fetched
    from the provider (archived as received, like every body); an unreadable structure is a payload error (the
    batch is quarantined in one line)."""
    import hashlib

    from ingest.eurostat.errors import EurostatPayloadError
    from ingest.sdmx.errors import SdmxError
    from ingest.sdmx.read_xml import needs_structure
    from ingest.sdmx.structure import read_dsd

    if dataset.dimensions or not needs_structure(body):
        return None
    try:
        received = client.structure(dataset)  # archived by the client's on_response, as every body
        return read_dsd(received.body), hashlib.sha256(received.body).hexdigest()
    except (EurostatPayloadError, SdmxError) as exc:
        why = getattr(exc, "problem", None) or str(exc)
        raise EurostatPayloadError(
            dataset.code,
            f"its data structure (DSD) could not be read from {dataset.provider} ({why}); or list the structure's"
            " dimensions under `dimensions` in its catalogue entry",
            kind="structure",
        ) from None


def _unchanged(cur, code: str, content: str | None) -> bool:
    """Whether the batch loaded last for ``code`` has these observations (the same content digest)."""
    cur.execute(
        "select b.meta->'sdmx'->>'content' from audit.source_state s join audit.batches b using (batch_id)"
        " where s.source = %s and s.object = %s and b.status = 'loaded'",
        (SOURCE, code),
    )
    row = cur.fetchone()
    return content is not None and row is not None and row[0] == content


def decode_batch(batch: Batch, archive: Archive | None = None) -> pd.DataFrame:
    """Decode every archived part of a batch (no network) into one long table."""
    import pandas as pd

    from ingest.eurostat.decode import decode

    archive = archive or Archive()
    frames = [decode(archive.get(sha), batch.object) for sha in batch.sha256]
    return frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)


def to_raw_rows(frame: pd.DataFrame, batch_id: str) -> pd.DataFrame:
    """The decoded long table in the shape of raw.eurostat_observations (dims as JSON and a series key)."""
    import pandas as pd

    dims = [c for c in dimension_columns(frame.columns) if c != "geo"]
    if dims:
        codes, uniques = pd.MultiIndex.from_frame(frame[dims].astype(str)).factorize()
        keys = [",".join(f"{d}={v}" for d, v in zip(dims, u, strict=True)) for u in uniques]
        docs = [json.dumps(dict(zip(dims, u, strict=True)), separators=(",", ":")) for u in uniques]
        series_key = pd.Series(keys, dtype=object).take(codes).to_numpy()
        dims_json = pd.Series(docs, dtype=object).take(codes).to_numpy()
    else:
        series_key, dims_json = "", "{}"

    def col(name: str):  # a missing column (e.g. no geo dimension) is left to the GX gate to report
        return frame[name].to_numpy() if name in frame.columns else None

    return pd.DataFrame(
        {
            "dataset": col("dataset"),
            "series_key": series_key,
            "dims": dims_json,
            "geo": col("geo"),
            "time": col("time"),
            "value": col("value"),
            "obs_status": col("obs_status"),
            "conf_status": col("conf_status"),
            "source_updated_at": col("source_updated_at"),
            "batch_id": batch_id,
        },
        index=pd.RangeIndex(len(frame)),
    )


def payload_metadata(payload: bytes) -> dict:
    """Code lists per dimension and the OBS_COUNT annotation of a JSON-stat payload (empty for TSV)."""
    import orjson

    from ingest.eurostat.envelope import gunzip

    if payload[:2] == b"\x1f\x8b":
        payload = gunzip(payload)  # bounded, as everywhere (catalogue.yml sources.eurostat)
    if not payload.lstrip()[:1] == b"{":
        return {}
    doc = orjson.loads(payload)
    code_lists = {}
    for dim_id in doc.get("id", []):
        if dim_id.lower() in ("time", "time_period"):
            continue
        category = doc["dimension"][dim_id].get("category") or {}
        index = category.get("index", category.get("label"))  # JSON-stat: index optional for one category
        code_lists[dim_id.lower()] = sorted(index if isinstance(index, (dict, list)) else [])
    obs_count = None
    for ann in (doc.get("extension") or {}).get("annotation", []) or []:
        if ann.get("type") == "OBS_COUNT":
            obs_count = int(ann.get("title") or ann.get("text") or 0)
    return {"code_lists": code_lists, "obs_count": obs_count}


def validation_context(batch: Batch, frame: pd.DataFrame, archive: Archive | None = None) -> dict:
    """Dataset metadata the Eurostat suite needs (code lists, OBS_COUNT), read from the archived payload."""
    archive = archive or Archive()
    meta = [payload_metadata(archive.get(sha)) for sha in batch.sha256]
    code_lists: dict[str, list[str]] = {}
    for m in meta:
        for dim, codes in (m.get("code_lists") or {}).items():
            code_lists.setdefault(dim, [])
            code_lists[dim] = sorted(set(code_lists[dim]) | set(codes))
    obs_counts = [m.get("obs_count") for m in meta]
    ctx = {"dataset": batch.object, "code_lists": code_lists, "dimensions": dimension_columns(frame.columns)}
    if obs_counts and all(c is not None for c in obs_counts):
        # OBS_COUNT counts observations with a value; rows also hold status-only cells (e.g. ":c").
        ctx["obs_count"] = sum(obs_counts) + int(frame["value"].isna().sum())
    return ctx


def prepare(batch: Batch):
    """Decode an archived Eurostat or SDMX batch into the raw table and its GX check (gate.Prepared)."""
    from ingest.eurostat.errors import EurostatPayloadError
    from ingest.tasks.gate import BatchRejected, Prepared

    if "sdmx" in batch.meta:  # an SDMX provider's batch (recorded at extract: replays read it the same way)
        return prepare_sdmx(batch, batch.meta["sdmx"])
    if batch.meta.get("bulk"):  # a bulk file: staged and validated in the warehouse (tasks.bulk)
        from ingest.tasks import bulk

        return bulk.stage(batch)
    try:
        frame = decode_batch(batch)
    except EurostatPayloadError as exc:
        code = "undecodable" if exc.kind == "undecodable" else "not_data"
        raise BatchRejected([{"code": code, "message": str(exc), "file": batch.object}]) from None
    except (ValueError, TypeError, KeyError, IndexError) as exc:  # malformed JSON-stat (e.g. a text value)
        raise BatchRejected(
            [
                {
                    "code": "undecodable",
                    "message": f"{batch.object}: cannot decode the payload ({type(exc).__name__}: {exc})",
                    "file": batch.object,
                }
            ]
        ) from None
    return Prepared(
        tables={"eurostat_observations": to_raw_rows(frame, batch.batch_id)},
        checks=[("eurostat_observations", frame, validation_context(batch, frame))],
        partition={"dataset": batch.object},
    )


def prepare_sdmx(batch: Batch, reading: dict):
    """An archived SDMX batch as the raw table (its geo dimension named ``geo``) and the ``sdmx_observations`` check;
    ``reading`` is :func:`sdmx_reading`'s record of the batch.

    A body that is not SDMX data (``not_data``), an SDMX message that cannot be read (``undecodable``) or one without
    the configured geo dimension (``no_geo``) rejects the batch with one line; gzip bodies are expanded within
    ``catalogue.yml`` ``sources.sdmx`` limits."""
    import pandas as pd

    from ingest.eurostat.envelope import gunzip
    from ingest.eurostat.errors import EurostatPayloadError
    from ingest.sdmx.decode import decode_sdmx, sniff
    from ingest.sdmx.errors import SdmxError
    from ingest.sdmx.structure import Dsd
    from ingest.tasks.gate import BatchRejected, Prepared

    archive, limits = Archive(), load_catalogue().limits("sdmx")
    dims = tuple(reading.get("dimensions") or ())
    dsd = Dsd(batch.object, dims, reading.get("time_dimension") or "TIME_PERIOD") if dims else None
    frames = []
    for sha in batch.sha256:
        body, code = archive.get(sha), "not_data"
        try:
            if body[:2] == b"\x1f\x8b":
                body = gunzip(
                    body,
                    max_bytes=int(limits["max_decompressed_bytes"]),
                    max_ratio=float(limits["max_compression_ratio"]),
                )
            sniff(body)
            code = "undecodable"
            frames.append(decode_sdmx(body, dsd, dataset=batch.object))
        except (SdmxError, EurostatPayloadError) as exc:
            message = f"{batch.object}: row -, column -: {exc}"
            raise BatchRejected([{"code": code, "message": message, "file": batch.object}]) from None
    frame = frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)
    geo = str(reading.get("geo") or "geo").lower()
    if geo not in frame.columns:
        found = "the message has no such dimension"
    elif geo != "geo" and "geo" in frame.columns:
        found = "the message has a dimension geo besides it"
    else:
        found = ""
    if found:
        dims = ", ".join(c for c in frame.columns if c not in NON_DIMENSION_COLUMNS)
        message = f"{batch.object}: row -, column {geo}: geo dimension {geo} (catalogue `geo`): {found} ({dims})"
        raise BatchRejected([{"code": "no_geo", "message": message, "file": batch.object, "column": geo}])
    frame = frame.assign(dataset=batch.object).rename(columns={geo: "geo"})
    context = {"dataset": batch.object, "dimensions": dimension_columns(frame.columns)}
    return Prepared(
        tables={"eurostat_observations": to_raw_rows(frame, batch.batch_id)},
        checks=[("sdmx_observations", frame, context)],
        partition={"dataset": batch.object},
    )


def remember_loaded(cur, batch: Batch) -> None:
    """After a successful load: the state change detection compares the next table of contents with."""
    cur.execute(
        "insert into audit.source_state (source, object, batch_id, toc_last_update) values (%s, %s, %s, %s)"
        " on conflict (source, object) do update set batch_id = excluded.batch_id,"
        " toc_last_update = excluded.toc_last_update, loaded_at = now()",
        (SOURCE, batch.object, batch.batch_id, batch.meta.get("toc_last_update")),
    )
