"""A big batch staged in a warehouse table of its own (write-audit-publish): its record, the GX verdict on it (GX's
SQL engine, the primary key's index built beside), and its drop when it is quarantined."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import pandas as pd

from ingest.tasks.common import Batch, log
from ingest.warehouse import LOADER, connect


@dataclass
class StagedTable:
    """A big batch written to a warehouse table of its own (write-audit-publish): validated there with GX's SQL
    engine, published by a partition swap (``ingest.load.publish_staged``)."""

    schema: str
    name: str
    rows: int
    suite: str
    profile: pd.DataFrame  # the columns, dtypes and distinct coded values the suite resolves on
    context: dict
    extra_columns: list[str] = field(default_factory=list)  # checked, then dropped before publishing
    key: list[str] = field(default_factory=list)  # the raw table's primary key: its index is built beside the check

    @property
    def meta(self) -> dict:
        return {"schema": self.schema, "name": self.name, "drop_columns": self.extra_columns}


def check_staged(validator, batch: Batch, staged: StagedTable):
    """The verdict on a staged batch (GX's SQL engine, as the stage's role); the exception when GX failed.

    Beside it, on a connection of its own, the unique index of the raw table's primary key is built on the staged
    table (it only reads the table, as the validation does): the publish makes it the partition's key instead of
    building one then. Where it cannot be built (duplicates: the validation says which), the publish builds it."""
    indexer = threading.Thread(target=_index_key, args=(staged,), name="staged-key-index", daemon=True)
    if staged.key:
        indexer.start()
    try:
        return validator.validate_table(
            staged.suite,
            batch.batch_id,
            (staged.schema, staged.name),
            staged.profile,
            staged.rows,
            # the server's memory for GX's grouping queries (a key's uniqueness over millions of rows)
            creator=lambda: connect(role=LOADER, options="-c work_mem=256MB"),
            context=staged.context,
        )
    except Exception as exc:  # noqa: BLE001 - this batch is quarantined, the others go on
        log.warning("%s: validation %s failed unexpectedly (%s)", batch.object, staged.suite, type(exc).__name__)
        return exc
    finally:
        if indexer.is_alive():
            indexer.join()


def _index_key(staged: StagedTable) -> None:
    from psycopg2 import sql

    try:
        conn = connect(role=LOADER, options="-c maintenance_work_mem=512MB")
        with conn, conn.cursor() as cur:
            cur.execute(
                sql.SQL("create unique index {} on {} ({})").format(
                    sql.Identifier(f"{staged.name}_key"),
                    sql.Identifier(staged.schema, staged.name),
                    sql.SQL(", ").join(map(sql.Identifier, staged.key)),
                )
            )
        conn.close()
    except Exception as exc:  # noqa: BLE001 - the publish builds the key itself
        log.info(
            "%s.%s: key index not built beside the validation (%s)", staged.schema, staged.name, type(exc).__name__
        )


def drop_staged(schema: str, name: str) -> None:
    """Drop a staged batch's table (quarantined: nothing of it is published). A failure is logged, never raised:
    the batch's outcome is recorded all the same (an abandoned table is dropped by a later staging)."""
    from psycopg2 import sql

    try:
        conn = connect(role=LOADER)
        with conn, conn.cursor() as cur:
            cur.execute(sql.SQL("drop table if exists {}").format(sql.Identifier(schema, name)))
        conn.close()
    except Exception as exc:  # noqa: BLE001 - see the docstring
        log.warning("%s.%s: staging table not dropped (%s)", schema, name, type(exc).__name__)
