"""Recomputing the chain from the tables (psycopg only: runs beside Django, not through its ORM).

One pass: the blocks in order (a server-side cursor), and the records of each kind in one
COPY stream ordered by the block their transaction id falls in, then by id. Memory holds
one block's index at a time. scripts/verify_history.py is an independent implementation
of the same rules for auditors; the tests hold the two to the same answers.
"""

from __future__ import annotations

import bisect
import hashlib
from collections.abc import Iterator, Mapping
from contextlib import closing
from dataclasses import dataclass

import psycopg

from history import encoding, queries
from history.models import GENESIS_HASH

CHANGED = "changed"
MISSING = "missing"
UNSEALED = "unsealed"  # a record inside a sealed range that its block does not hold
BLOCK_CHANGED = "block-changed"
NOT_IN_CHAIN = "not-in-chain"
DIGEST_SIZE = 32


@dataclass(frozen=True)
class Problem:
    """The first thing that does not match, named for an operator."""

    change: str
    detail: str
    block: int | None = None
    kind: str | None = None
    record_id: int | None = None
    public_id: str | None = None

    def line(self) -> str:
        parts = ["mismatch"]
        if self.block is not None:
            parts.append(f"block={self.block}")
        if self.kind == encoding.EVENT.name:
            parts.append(f"event={self.public_id} id={self.record_id}")
        elif self.kind is not None:
            parts.append(f"{self.kind}={self.record_id}")
        parts.append(f"change={self.change}")
        return f"{' '.join(parts)}: {self.detail}"


@dataclass(frozen=True)
class VerifyResult:
    blocks: int
    records: int
    head: str
    problem: Problem | None

    def summary(self) -> str:
        return f"blocks={self.blocks} records={self.records} head={self.head}"


class _Stream:
    """One kind's records as (bucket, line), bucket = the block its xact_id falls in."""

    def __init__(self, conn: psycopg.Connection, kind: encoding.Kind, thresholds: list[int]) -> None:
        queries.records_stream_settings(conn)
        self._rows = queries.records_by_block(conn, kind, thresholds)
        self.current: tuple[int, bytes] | None = next(self._rows, None)

    def close(self) -> None:
        """Stop reading: psycopg cancels the rest of the COPY (else the connection stays busy with it)."""
        self._rows.close()

    def take(self, bucket: int) -> Iterator[bytes]:
        """The lines of this bucket and of any earlier one not taken yet (those are out of range)."""
        while self.current is not None and self.current[0] <= bucket:
            yield self.current[1]
            self.current = next(self._rows, None)


class _Marks:
    """Per kind: the highest id sealed up to each block, and that block's xact_next.

    A record whose id is below one already sealed must have had its transaction id before
    that block was sealed (migration 0002 takes it before the id): otherwise it was
    written afterwards with an old id.
    """

    def __init__(self) -> None:
        self.max_ids: list[int] = []
        self.xact_next: list[int] = []
        self.numbers: list[int] = []

    def intruded(self, record_id: int, xact: int) -> int | None:
        """The block whose sealed id range this record entered after it was sealed, if any."""
        at = bisect.bisect_left(self.max_ids, record_id)
        if at < len(self.max_ids) and xact >= self.xact_next[at]:
            return self.numbers[at]
        return None


class ChainVerifier:
    """One verification: `blocks` reads the chain, `records[kind]` streams that kind's records."""

    def __init__(self, blocks: psycopg.Connection, records: Mapping[str, psycopg.Connection]) -> None:
        self.blocks = blocks
        self.records = records

    def run(self, *, expected_head: str | None = None) -> VerifyResult:
        conn = self.blocks
        conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ  # bounds and blocks from one snapshot
        conn.execute(encoding.session_sql())
        bounds = queries.block_bounds(conn)
        thresholds = [0]
        structural: Problem | None = None
        for expected, (number, xact_from, xact_to) in enumerate(bounds, start=1):
            if number != expected or xact_from != thresholds[-1] or xact_to <= xact_from:
                structural = Problem(
                    BLOCK_CHANGED,
                    f"block {number} does not follow block {expected - 1} (number or transaction range changed)",
                    block=expected if number != expected else number,
                )
                break
            thresholds.append(xact_to)
        sealed = len(thresholds) - 1
        streams = {kind.name: _Stream(self.records[kind.name], kind, thresholds) for kind in encoding.KINDS}
        try:
            marks = {kind.name: _Marks() for kind in encoding.KINDS}
            previous_hash, total, blocks, hashes = GENESIS_HASH, 0, 0, set()
            problem: Problem | None = None
            with closing(queries.blocks_read(conn, up_to=sealed)) as rows:
                for row in rows:
                    problem = self._block(row, previous_hash, total, streams, marks)
                    if problem is not None:
                        break
                    previous_hash, total, blocks = row[2], row[9], blocks + 1
                    hashes.add(previous_hash)
            if problem is None:
                problem = structural
            if problem is None:
                problem = self._unsealed(streams, marks, sealed + 1)
            conn.rollback()
            if problem is None and expected_head is not None and expected_head not in hashes:
                problem = Problem(NOT_IN_CHAIN, f"no block of the chain has hash {expected_head}")
        finally:
            for stream in streams.values():
                stream.close()
        return VerifyResult(blocks, total, previous_hash, problem)

    def _block(
        self,
        row: tuple,
        previous_hash: str,
        total: int,
        streams: Mapping[str, _Stream],
        marks: Mapping[str, _Marks],
    ) -> Problem | None:
        (number, stored_previous, stored_hash, sealed_at, xact_from, xact_to, xact_next, event_count, audit_count,
         records_total, max_event_id, max_audit_id, event_ids, event_public_ids, audit_ids, digests) = row  # fmt: skip
        block = hashlib.sha256(
            encoding.header(
                number=number,
                previous_hash=stored_previous,
                sealed_at=sealed_at,
                xact_from=xact_from,
                xact_to=xact_to,
                xact_next=xact_next,
            )
        )
        # Compared as the records stream in: a block of a million records is never held as a list.
        event_ids, audit_ids = event_ids or [], audit_ids or []
        event_public_ids = event_public_ids or []
        events = min(len(event_ids), len(event_public_ids))
        size = events + len(audit_ids)
        digests = bytes(digests or b"")
        if stored_previous != previous_hash:
            return Problem(BLOCK_CHANGED, f"its previous_hash is not block {number - 1}'s hash", block=number)
        if len(digests) != size * DIGEST_SIZE:
            return Problem(BLOCK_CHANGED, "its record index and digests disagree", block=number)

        def sealed(at: int) -> tuple[int, int]:
            return (0, event_ids[at]) if at < events else (1, audit_ids[at - events])

        def problem(change: str, detail: str, at: int) -> Problem:
            order, record_id = sealed(at)
            public_id = event_public_ids[at] if order == 0 else None
            return Problem(change, detail, number, encoding.KINDS[order].name, record_id, public_id)

        at, counts, maxima = 0, [0, 0], []
        intrusion: Problem | None = None
        for order, kind in enumerate(encoding.KINDS):
            highest = marks[kind.name].max_ids[-1] if marks[kind.name].max_ids else 0
            for line in streams[kind.name].take(number):
                block.update(line)
                record_id, public_id = encoding.record_key(line)
                if at < size and sealed(at) < (order, record_id):
                    return problem(MISSING, f"sealed by block {number}, no longer in the table", at)
                if at == size or sealed(at) > (order, record_id):
                    detail = f"inside block {number}'s sealed range but not sealed by it"
                    return Problem(UNSEALED, detail, number, kind.name, record_id, public_id)
                if digests[at * DIGEST_SIZE : (at + 1) * DIGEST_SIZE] != encoding.record_digest(line):
                    return problem(CHANGED, f"a stored field differs from what block {number} sealed", at)
                at, counts[order] = at + 1, counts[order] + 1
                if intrusion is None and record_id <= highest:
                    intruded = marks[kind.name].intruded(record_id, encoding.record_xact(line))
                    if intruded is not None:
                        intrusion = _intrusion(kind.name, record_id, public_id, intruded, f"sealed in block {number}")
                highest = max(highest, record_id)
            maxima.append(highest)
        if at < size:
            return problem(MISSING, f"sealed by block {number}, no longer in the table", at)
        if intrusion is not None:
            return intrusion
        if block.hexdigest() != stored_hash:
            return Problem(BLOCK_CHANGED, "its hash does not match its header and records", block=number)
        if (event_count, audit_count, records_total, max_event_id, max_audit_id) != (*counts, total + size, *maxima):
            return Problem(BLOCK_CHANGED, "its counts or highest ids do not match its records", block=number)
        for kind, highest in zip(encoding.KINDS, maxima, strict=True):
            marks[kind.name].max_ids.append(highest)
            marks[kind.name].xact_next.append(xact_next)
            marks[kind.name].numbers.append(number)
        return None

    @staticmethod
    def _unsealed(streams: Mapping[str, _Stream], marks: Mapping[str, _Marks], bucket: int) -> Problem | None:
        """Records not sealed yet: none may have entered a sealed id range after it was sealed."""
        for kind in encoding.KINDS:
            for line in streams[kind.name].take(bucket):
                record_id, public_id = encoding.record_key(line)
                intruded = marks[kind.name].intruded(record_id, encoding.record_xact(line))
                if intruded is not None:
                    return _intrusion(kind.name, record_id, public_id, intruded, "not sealed yet")
        return None


def _intrusion(kind: str, record_id: int, public_id: str | None, block: int, where: str) -> Problem:
    return Problem(
        UNSEALED,
        f"written after block {block} had sealed higher ids ({where}): a row inserted with an old id",
        block=block,
        kind=kind,
        record_id=record_id,
        public_id=public_id,
    )
