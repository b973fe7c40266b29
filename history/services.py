"""Sealing and verifying the history: the one implementation the commands, the admin and the API share.

Which records a seal takes: PostgreSQL assigns transaction ids in order, and the lowest
id in `pg_current_snapshot()` still running (leaving out other databases', _SNAPSHOT_SQL)
is the horizon. Every transaction of this database below it has ended, so every record
it committed is visible, and no record with a lower `xact_id` can ever appear. A block seals the records with
`previous block's xact_to <= xact_id < this xmin`. A transaction still open at sealing
time keeps its records (and every later one's) out of the block; they go into a later
one when it ends. Ids play no part: a late commit of a low id is never skipped.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import psycopg
from django.db import connection, transaction
from django.utils import timezone

from history import encoding
from history.models import GENESIS_HASH, Verification
from history.verify import ChainVerifier, VerifyResult

# pg_advisory_xact_lock key: one sealer at a time ("amanihst").
SEAL_LOCK_ID = 0x616D616E69687374


class HistoryRewound(Exception):
    """The database's transaction counter is behind the last block: restored from a logical dump."""


@dataclass(frozen=True)
class SealedBlock:
    number: int
    hash: str
    records: int
    records_total: int
    more: bool = False  # the block was cut at MAX_BLOCK_RECORDS: committed records remain


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


# A block holds whole transactions, at most this many records unless one transaction has more:
# a backlog (a sealer stopped for hours) is sealed in several blocks, in bounded memory.
MAX_BLOCK_RECORDS = 200_000


def _bound(raw: psycopg.Cursor, xact_from: int, xact_to: int, max_records: int) -> int:
    """The upper bound of the next block: xact_to, or lower when the range holds more than max_records."""
    ranged = " UNION ALL ".join(
        f"SELECT xact_id FROM {kind.table} WHERE xact_id >= %(low)s AND xact_id < %(high)s"  # noqa: S608
        for kind in encoding.KINDS
    )
    params = {"low": xact_from, "high": xact_to, "over": max_records}
    nth = f"SELECT xact_id FROM ({ranged}) AS r ORDER BY xact_id OFFSET %(over)s LIMIT 1"  # noqa: S608
    (cut,) = raw.execute(nth, params).fetchone() or (None,)
    if cut is None:
        return xact_to
    if cut == xact_from:  # one transaction holds more than max_records: it is a block of its own
        after = f"SELECT min(xact_id) FROM ({ranged}) AS r WHERE xact_id > %(low)s"  # noqa: S608
        (cut,) = raw.execute(after, params).fetchone()
        return xact_to if cut is None else cut
    return cut


def history_seal(*, max_records: int = MAX_BLOCK_RECORDS) -> SealedBlock | None:
    """Seal committed records not yet sealed into the next block; None when there is none.

    One block of whole transactions, at most `max_records` records (unless a single
    transaction has more): call again until None to seal everything.

    Runs in its own transaction, beside the writers: it reads what they committed and
    inserts one block row; it takes no lock a writer waits for (the advisory lock only
    keeps two sealers apart). Raises HistoryRewound after a logical restore into a
    cluster whose transaction ids restarted (docs/runbooks/history.md).
    """
    # Server-side binding: the id arrays are large.
    with transaction.atomic(), psycopg.Cursor(connection.connection) as raw:
        raw.execute("SELECT pg_advisory_xact_lock(%s)", [SEAL_LOCK_ID])
        raw.execute(encoding.session_sql())
        horizon, xmax, sealed_at = raw.execute(_SNAPSHOT_SQL).fetchone()
        last = raw.execute(_LAST_BLOCK_SQL).fetchone()
        number, previous_hash, xact_from, total, max_event_id, max_audit_id = (
            (last[0] + 1, *last[1:]) if last else (1, GENESIS_HASH, 0, 0, 0, 0)
        )
        if xmax < xact_from:
            raise HistoryRewound(
                f"the next transaction id ({xmax}) is below block {number - 1}'s bound ({xact_from}): "
                "this database's transaction ids restarted (a logical restore?); see docs/runbooks/history.md"
            )
        if horizon <= xact_from:
            # Nothing has ended since the last block. Or the horizon errs low, below it: another
            # database's transaction that ended between the snapshot and the pg_stat_activity
            # read counts as this one's (_SNAPSHOT_SQL). Either way, the next seal takes it.
            return None
        xact_to = _bound(raw, xact_from, horizon, max_records)
        (xact_next,) = raw.execute("SELECT pg_current_xact_id()::text::bigint").fetchone()
        block = hashlib.sha256(
            encoding.header(
                number=number,
                previous_hash=previous_hash,
                sealed_at=sealed_at,
                xact_from=xact_from,
                xact_to=xact_to,
                xact_next=xact_next,
            )
        )
        ids: dict[str, list[int]] = {kind.name: [] for kind in encoding.KINDS}
        public_ids: list[str] = []
        digests = bytearray()
        where = f"xact_id >= {int(xact_from)} AND xact_id < {int(xact_to)}"
        for kind in encoding.KINDS:
            with raw.copy(encoding.records_copy_sql(kind, where=where)) as copy:
                for row in copy:
                    line = bytes(row)
                    block.update(line)
                    digests += encoding.record_digest(line)
                    record_id, public_id = encoding.record_key(line)
                    ids[kind.name].append(record_id)
                    if public_id is not None:
                        public_ids.append(public_id)
        events, audits = ids[encoding.EVENT.name], ids[encoding.AUDIT.name]
        records = len(events) + len(audits)
        if not records:
            return None
        digest = block.hexdigest()
        raw.execute(
            _INSERT_SQL,
            [
                number,
                previous_hash,
                digest,
                sealed_at,
                xact_from,
                xact_to,
                xact_next,
                len(events),
                len(audits),
                total + records,
                max([max_event_id, *events[-1:]]),
                max([max_audit_id, *audits[-1:]]),
                events,
                public_ids,
                audits,
                bytes(digests),
            ],
        )
        return SealedBlock(number, digest, records, total + records, more=xact_to < horizon)


def _connect() -> psycopg.Connection:
    """A connection of its own to the default database (verification streams on three at once)."""
    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    params.pop("context", None)
    params.pop("server_side_binding", None)
    return psycopg.connect(**params)


def history_verify(*, expected_head: str | None = None) -> VerifyResult:
    """Recompute every block from the records and the chain; record the run for the admin."""
    started = timezone.now()
    with _connect() as blocks, _connect() as events, _connect() as audits:
        result = ChainVerifier(blocks, {encoding.EVENT.name: events, encoding.AUDIT.name: audits}).run(
            expected_head=expected_head
        )
    Verification.objects.create(
        started_at=started,
        finished_at=timezone.now(),
        ok=result.problem is None,
        blocks=result.blocks,
        records=result.records,
        head=result.head if result.blocks else "",
        expected_head=expected_head or "",
        problem=result.problem.line() if result.problem else "",
    )
    return result
