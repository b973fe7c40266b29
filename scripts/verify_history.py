#!/usr/bin/env python3
"""Verify Amani's tamper-evident history without the service: Python's standard library and psycopg only.

    python scripts/verify_history.py postgres://user@host:5432/amani [--head HASH]

An auditor's second implementation of docs/runbooks/history.md, written from the runbook and
not from the service's code (it imports nothing of the service): it reads the tables, recomputes
every record's encoding, every block's hash and the chain, and prints the same lines as
`manage.py verify_history`: `blocks=N records=N head=<hash>` (exit 0), or `mismatch ...` naming
the first block and record that do not match (exit 1). Exit 2 when it cannot read the database.
A read-only role is enough (SELECT on the three tables).
"""

from __future__ import annotations

import argparse
import bisect
import hashlib
import os
import sys

import psycopg

VERSION = "amani-history/1"
GENESIS = "0" * 64
SETTINGS = (  # per transaction: every read below runs inside one
    "SET LOCAL TimeZone = 'UTC'; SET LOCAL DateStyle = 'ISO, YMD'; SET LOCAL IntervalStyle = 'postgres'; "
    "SET LOCAL client_encoding = 'UTF8'; SET LOCAL extra_float_digits = '1'"
)
# (kind, table, columns): the encoding's field order. A block holds its events, then its audit records, each by id.
TABLES = (
    ("event", "events_walletevent", "id, public_id, wallet_id, provider, event_type, amount, currency, "
     "provider_event_id, idempotency_key, metadata, occurred_at, created_at, xact_id"),
    ("audit", "audit_auditrecord", "id, action, actor_type, actor_id, user_id, resource_type, resource_id, "
     "details, request_id, created_at, xact_id"),
)  # fmt: skip


class Mismatch(Exception):
    def __init__(self, change: str, detail: str, block: int | None = None, record: str = "") -> None:
        super().__init__(detail)
        self.text = " ".join(
            part for part in ("mismatch", f"block={block}" if block is not None else "", record, f"change={change}")
            if part
        ) + f": {detail}"  # fmt: skip


def record_name(kind: str, line: bytes) -> tuple[int, str]:
    fields = line.split(b"\t", 3)
    record_id = int(fields[1])
    return record_id, (f"event={fields[2].decode()} id={record_id}" if kind == "event" else f"{kind}={record_id}")


def records(conn: psycopg.Connection, kind: str, table: str, columns: str, bounds: list[int]):
    """(block, line) for every record, block = 1.. for sealed ranges, len(bounds) for the unsealed tail."""
    conn.execute(SETTINGS)
    conn.execute("SET LOCAL work_mem = '64MB'")
    array = "{" + ",".join(map(str, bounds)) + "}"
    # Names and integers only.
    query = f"COPY (SELECT width_bucket(xact_id, '{array}'::bigint[]), '{kind}', {columns} FROM {table} ORDER BY 1, id) TO STDOUT"  # noqa: S608, E501
    with conn.cursor().copy(query) as copy:
        for row in copy:
            block, _, line = bytes(row).partition(b"\t")
            yield int(block), line


class Reader:
    def __init__(self, rows) -> None:
        self.rows, self.next = rows, next(rows, None)

    def close(self) -> None:
        """Stop reading: psycopg cancels the rest of the COPY (else the connection stays busy with it)."""
        self.rows.close()

    def upto(self, block: int):
        while self.next is not None and self.next[0] <= block:
            yield self.next[1]
            self.next = next(self.rows, None)


def verify(dsn: str, head: str | None) -> tuple[int, int, str]:
    with psycopg.connect(dsn) as blocks, psycopg.connect(dsn) as events, psycopg.connect(dsn) as audits:
        blocks.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        blocks.execute(SETTINGS)
        ranges = blocks.execute("SELECT number, xact_from, xact_to FROM history_block ORDER BY number").fetchall()
        bounds, broken = [0], None
        for expected, (number, low, high) in enumerate(ranges, start=1):
            if number != expected or low != bounds[-1] or high <= low:
                broken = Mismatch(
                    "block-changed",
                    f"block {number} does not follow block {expected - 1} (number or transaction range changed)",
                    expected if number != expected else number,
                )
                break
            bounds.append(high)
        readers = {kind: Reader(records(conn, kind, table, columns, bounds))
                   for (kind, table, columns), conn in zip(TABLES, (events, audits), strict=True)}  # fmt: skip
        try:
            # Per kind: highest id sealed up to each block, and the next transaction id when that block was sealed.
            highest = {kind: [] for kind, _, _ in TABLES}
            nexts: list[int] = []
            previous, total, count, hashes = GENESIS, 0, 0, set()

            def old_id(kind: str, record_id: int, line: bytes) -> int | None:
                at = bisect.bisect_left(highest[kind], record_id)
                if at < len(nexts) and int(line[line.rindex(b"\t") + 1 :]) >= nexts[at]:
                    return at + 1
                return None

            with blocks.cursor(name="blocks") as cursor:
                cursor.execute(
                    "SELECT number, previous_hash, hash, sealed_at::text, xact_from, xact_to, xact_next, event_count, "
                    "audit_count, records_total, max_event_id, max_audit_id, event_ids, event_public_ids::text[], "
                    "audit_ids, digests FROM history_block WHERE number <= %s ORDER BY number",
                    [len(bounds) - 1],
                )
                for (number, prev, stored_hash, sealed_at, low, high, xnext, n_events, n_audits, records_total,
                     max_event, max_audit, event_ids, public_ids, audit_ids, digests) in cursor:  # fmt: skip
                    block = hashlib.sha256(
                        f"{VERSION}\t{number}\t{prev}\t{sealed_at}\t{low}\t{high}\t{xnext}\n".encode()
                    )
                    sealed = [
                        (0, i, f"event={p} id={i}") for i, p in zip(event_ids or [], public_ids or [], strict=False)
                    ]
                    sealed += [(1, i, f"audit={i}") for i in audit_ids or []]
                    digests = bytes(digests or b"")
                    seen, intruder, tops = [], None, []
                    for order, (kind, _, _) in enumerate(TABLES):
                        top = highest[kind][-1] if highest[kind] else 0
                        for line in readers[kind].upto(number):
                            block.update(line)
                            record_id, name = record_name(kind, line)
                            seen.append((order, record_id, name, hashlib.sha256(line).digest()))
                            if intruder is None and (into := old_id(kind, record_id, line)) is not None:
                                intruder = Mismatch(
                                    "unsealed",
                                    f"written after block {into} had sealed higher ids (sealed in block {number}): "
                                    "a row inserted with an old id",
                                    into,
                                    name,
                                )
                            top = max(top, record_id)
                        tops.append(top)
                    if prev != previous:
                        raise Mismatch("block-changed", f"its previous_hash is not block {number - 1}'s hash", number)
                    if len(digests) != 32 * len(sealed):
                        raise Mismatch("block-changed", "its record index and digests disagree", number)
                    i = j = 0
                    while i < len(sealed) or j < len(seen):
                        if j == len(seen) or (i < len(sealed) and sealed[i][:2] < seen[j][:2]):
                            raise Mismatch("missing", f"sealed by block {number}, no longer in the table", number,
                                           sealed[i][2])  # fmt: skip
                        if i == len(sealed) or seen[j][:2] < sealed[i][:2]:
                            raise Mismatch("unsealed", f"inside block {number}'s sealed range but not sealed by it",
                                           number, seen[j][2])  # fmt: skip
                        if digests[32 * i : 32 * i + 32] != seen[j][3]:
                            raise Mismatch("changed", f"a stored field differs from what block {number} sealed", number,
                                           sealed[i][2])  # fmt: skip
                        i, j = i + 1, j + 1
                    if intruder is not None:
                        raise intruder
                    if block.hexdigest() != stored_hash:
                        raise Mismatch("block-changed", "its hash does not match its header and records", number)
                    counted = (sum(s[0] == 0 for s in seen), sum(s[0] == 1 for s in seen), total + len(seen), *tops)
                    if (n_events, n_audits, records_total, max_event, max_audit) != counted:
                        raise Mismatch("block-changed", "its counts or highest ids do not match its records", number)
                    for (kind, _, _), top in zip(TABLES, tops, strict=True):
                        highest[kind].append(top)
                    nexts.append(xnext)
                    previous, total, count = stored_hash, records_total, count + 1
                    hashes.add(stored_hash)
            if broken is not None:
                raise broken
            for kind, _, _ in TABLES:
                for line in readers[kind].upto(len(bounds)):
                    record_id, name = record_name(kind, line)
                    if (into := old_id(kind, record_id, line)) is not None:
                        detail = f"written after block {into} had sealed higher ids (not sealed yet)"
                        raise Mismatch("unsealed", f"{detail}: a row inserted with an old id", into, name)
            if head is not None and head not in hashes:
                raise Mismatch("not-in-chain", f"no block of the chain has hash {head}")
            return count, total, previous
        finally:
            for reader in readers.values():
                reader.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dsn", nargs="?", default=os.environ.get("DATABASE_URL"), help="default: $DATABASE_URL")
    parser.add_argument("--head", help="a head published earlier: it must be a block of the chain")
    args = parser.parse_args(argv)
    if not args.dsn:
        parser.error("give the database URL (or set DATABASE_URL)")
    try:
        blocks, records_total, head = verify(args.dsn, args.head.strip().lower() if args.head else None)
    except Mismatch as mismatch:
        print(mismatch.text)
        return 1
    except psycopg.Error as exc:
        print(f"cannot read the history: {exc}", file=sys.stderr)
        return 2
    print(f"blocks={blocks} records={records_total} head={head}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
