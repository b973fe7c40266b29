"""Sealing and verifying the history: the one implementation the commands, the admin and the API share.

Which records a seal takes: PostgreSQL assigns transaction ids in order, and the lowest
id in `pg_current_snapshot()` still running (leaving out other databases': history.queries.snapshot_horizon)
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

from history import encoding, queries
from history.models import GENESIS_HASH, Verification
from history.verify import ChainVerifier, VerifyResult


class HistoryRewound(Exception):
    """The database's transaction counter is behind the last block: restored from a logical dump."""


@dataclass(frozen=True)
class SealedBlock:
    number: int
    hash: str
    records: int
    records_total: int
    more: bool = False  # the block was cut at MAX_BLOCK_RECORDS: committed records remain


# A block holds whole transactions, at most this many records unless one transaction has more:
# a backlog (a sealer stopped for hours) is sealed in several blocks, in bounded memory.
MAX_BLOCK_RECORDS = 200_000


def _bound(raw: psycopg.Cursor, xact_from: int, xact_to: int, max_records: int) -> int:
    """The upper bound of the next block: xact_to, or lower when the range holds more than max_records."""
    cut = queries.xact_id_after(raw, low=xact_from, high=xact_to, over=max_records)
    if cut is None:
        return xact_to
    if cut == xact_from:  # one transaction holds more than max_records: it is a block of its own
        cut = queries.xact_id_next_above(raw, low=xact_from, high=xact_to)
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
        queries.seal_lock(raw)
        raw.execute(encoding.session_sql())
        horizon, xmax, sealed_at = queries.snapshot_horizon(raw)
        last = queries.block_last(raw)
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
            # read counts as this one's (queries.snapshot_horizon). Either way, the next seal takes it.
            return None
        xact_to = _bound(raw, xact_from, horizon, max_records)
        xact_next = queries.xact_id_current(raw)
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
        for kind in encoding.KINDS:
            with queries.records_copy(raw, kind, xact_from=xact_from, xact_to=xact_to) as copy:
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
        queries.block_insert(
            raw,
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
