"""The SQL of the history, by what each statement does: sealing a block, reading the chain back,
and the seal lag. The rules are in history.services, history.verify and history.selectors; the
records' encoding (their COPY) is history.encoding's.

Sealing and verification run on psycopg connections and cursors of their own (server-side
binding: the id arrays are large), which the functions here take as their first argument.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager

import psycopg
from django.db import connection

from history import encoding

# pg_advisory_xact_lock key: one sealer at a time ("amanihst").
SEAL_LOCK_ID = 0x616D616E69687374

# The horizon: the oldest transaction of the snapshot still running, leaving out those known to
# belong to another database of the cluster (transaction ids are cluster-wide, and a long
# transaction elsewhere must not stall sealing here). A running transaction whose database
# cannot be seen (no pg_read_all_stats, a background process) counts as this database's:
# the horizon can only err low, sealing a record later, never skipping one. The foreign ids
# are read after the snapshot (one statement, whose snapshot pg_current_snapshot returns).
# xact_next is this sealer's own transaction id, taken after the snapshot (and only when there
# may be something to seal): every transaction that had an id when the block was sealed has a
# lower one. (The snapshot's xmax is not that: it is one past the latest *completed* id, and a
# running transaction can be above it.)
_SNAPSHOT_SQL = """
WITH snapshot AS (SELECT pg_current_snapshot() AS s),
foreign_xids AS (
    SELECT backend_xid::text::bigint AS x FROM pg_stat_activity
    WHERE backend_xid IS NOT NULL AND datname IS DISTINCT FROM current_database() AND datname IS NOT NULL
    UNION ALL
    SELECT transaction::text::bigint FROM pg_prepared_xacts WHERE database <> current_database()
)
SELECT
    coalesce(
        (SELECT min(x)::text::bigint FROM pg_snapshot_xip((SELECT s FROM snapshot)) AS x
         WHERE x::text::bigint % 4294967296 NOT IN (SELECT x FROM foreign_xids)),
        pg_snapshot_xmax(s)::text::bigint
    ),
    pg_snapshot_xmax(s)::text::bigint,
    clock_timestamp()::text
FROM snapshot
"""
_LAST_BLOCK_SQL = (
    "SELECT number, hash, xact_to, records_total, max_event_id, max_audit_id FROM history_block "
    "ORDER BY number DESC LIMIT 1"
)
_INSERT_SQL = (
    "INSERT INTO history_block (number, previous_hash, hash, sealed_at, xact_from, xact_to, xact_next, "
    "event_count, audit_count, records_total, max_event_id, max_audit_id, event_ids, event_public_ids, "
    "audit_ids, digests) VALUES (%s, %s, %s, %s::timestamptz, %s, %s, %s, %s, %s, %s, %s, %s, "
    "%s::bigint[], %s::uuid[], %s::bigint[], %s::bytea)"
)
_BLOCKS_SQL = (
    "SELECT number, previous_hash, hash, sealed_at::text, xact_from, xact_to, xact_next, event_count, "
    "audit_count, records_total, max_event_id, max_audit_id, event_ids, event_public_ids::text[], audit_ids, "
    "digests FROM history_block WHERE number <= %s ORDER BY number"
)


def seal_lock(raw: psycopg.Cursor) -> None:
    """Wait for the sealers' advisory lock, held until the end of the transaction."""
    raw.execute("SELECT pg_advisory_xact_lock(%s)", [SEAL_LOCK_ID])


def snapshot_horizon(raw: psycopg.Cursor) -> tuple[int, int, str]:
    """(the horizon, the snapshot's xmax, clock_timestamp() as text) by _SNAPSHOT_SQL."""
    return raw.execute(_SNAPSHOT_SQL).fetchone()


def block_last(raw: psycopg.Cursor) -> tuple[int, str, int, int, int, int] | None:
    """(number, hash, xact_to, records_total, max_event_id, max_audit_id) of the last block, or None."""
    return raw.execute(_LAST_BLOCK_SQL).fetchone()


def _ranged() -> str:
    return " UNION ALL ".join(
        f"SELECT xact_id FROM {kind.table} WHERE xact_id >= %(low)s AND xact_id < %(high)s"  # noqa: S608
        for kind in encoding.KINDS
    )


def xact_id_after(raw: psycopg.Cursor, *, low: int, high: int, over: int) -> int | None:
    """The transaction id of the record after the first `over` ones (by xact_id) in [low, high), or None."""
    nth = f"SELECT xact_id FROM ({_ranged()}) AS r ORDER BY xact_id OFFSET %(over)s LIMIT 1"  # noqa: S608
    (cut,) = raw.execute(nth, {"low": low, "high": high, "over": over}).fetchone() or (None,)
    return cut


def xact_id_next_above(raw: psycopg.Cursor, *, low: int, high: int) -> int | None:
    """The lowest transaction id above `low` of a record in [low, high), or None."""
    after = f"SELECT min(xact_id) FROM ({_ranged()}) AS r WHERE xact_id > %(low)s"  # noqa: S608
    (cut,) = raw.execute(after, {"low": low, "high": high}).fetchone()
    return cut


def xact_id_current(raw: psycopg.Cursor) -> int:
    """This transaction's id (one is assigned now if it had none)."""
    (xact_id,) = raw.execute("SELECT pg_current_xact_id()::text::bigint").fetchone()
    return xact_id


def records_copy(raw: psycopg.Cursor, kind: encoding.Kind, *, xact_from: int, xact_to: int) -> AbstractContextManager:
    """The COPY of `kind`'s records with xact_from <= xact_id < xact_to, each line its encoding."""
    where = f"xact_id >= {int(xact_from)} AND xact_id < {int(xact_to)}"
    return raw.copy(encoding.records_copy_sql(kind, where=where))


def block_insert(raw: psycopg.Cursor, values: Sequence[object]) -> None:
    """Insert a block row: `values` in the order of _INSERT_SQL's columns."""
    raw.execute(_INSERT_SQL, values)


def block_bounds(conn: psycopg.Connection) -> list[tuple[int, int, int]]:
    """(number, xact_from, xact_to) of every block, in order."""
    return conn.execute("SELECT number, xact_from, xact_to FROM history_block ORDER BY number").fetchall()


def blocks_read(conn: psycopg.Connection, *, up_to: int) -> Iterator[tuple]:
    """The blocks numbered up to `up_to`, in order, every column (_BLOCKS_SQL), from a server-side cursor."""
    with conn.cursor(name="history_blocks") as cursor:
        cursor.itersize = 8  # block rows carry their record index: a few at a time
        cursor.execute(_BLOCKS_SQL, [up_to])
        yield from cursor


def records_stream_settings(conn: psycopg.Connection) -> None:
    """The transaction's settings for streaming records: the encoding's session, and room to sort."""
    # SET LOCAL: the COPY runs in this transaction, and nothing leaks to a pooled server connection.
    conn.execute(encoding.session_sql())
    conn.execute("SET LOCAL work_mem = '64MB'")  # the ORDER BY of a million records


def records_by_block(
    conn: psycopg.Connection, kind: encoding.Kind, thresholds: list[int]
) -> Iterator[tuple[int, bytes]]:
    """`kind`'s records as (bucket, line) in one COPY, bucket = the block (by `thresholds`) its xact_id falls in."""
    bounds = "{" + ",".join(str(int(value)) for value in thresholds) + "}"
    sql = encoding.records_copy_sql(kind, where="true", bucket=f"width_bucket(xact_id, '{bounds}'::bigint[])")
    with conn.cursor().copy(sql) as copy:
        for row in copy:
            bucket, _, line = bytes(row).partition(b"\t")
            yield int(bucket), line


def records_unsealed() -> tuple[int, dt.datetime | None, dt.datetime]:
    """(count, min(created_at), now()) of the records not sealed yet, in one statement.

    The index on xact_id (history 0003) keeps this a scan of the tail.
    """
    # The last block's bound by its primary key (bounds grow with the number): max(xact_to)
    # would read every block, 86,400 more a day at one seal a second.
    head = "coalesce((SELECT xact_to FROM history_block ORDER BY number DESC LIMIT 1), 0)"
    unsealed = " UNION ALL ".join(
        f"SELECT created_at FROM {kind.table} WHERE xact_id >= {head}"  # noqa: S608
        for kind in encoding.KINDS
    )
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*), min(created_at), now() FROM ({unsealed}) AS unsealed")  # noqa: S608
        return cursor.fetchone()
