"""Ingest a provider export (JSONL or CSV) of wallet events, resumably.

Every record is decided as POST /api/v1/events/batch decides an item (the same
parser, events.validation, and the same decision code, events.services). Each
batch is loaded with COPY into a temporary staging table and moved with one
`INSERT … SELECT … ON CONFLICT DO NOTHING RETURNING` that also upserts the balance
buckets of the new rows (events.queries.events_insert_sql); its events, buckets and
one audit record commit together. Killed at any moment, a rerun re-decides every
record: committed batches come back as duplicates and the rest are created, so every
valid record ends up stored exactly once.

Two threads. A reader parses the file a batch ahead and prepares everything that
does not need the database (each record's staging row as COPY text, the wallets
to check); the main thread, which owns the database connection, checks
the batch's wallets once per (wallet, provider) pair, sends the prepared text and
runs the batch's transaction. PostgreSQL's work on one batch (the GIL is released
while waiting on it) overlaps the parsing of the next.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import queue
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from django.core.management.base import CommandParser
from django.db import connection, transaction

from amani import metrics
from amani.api.errors import DomainError, NotFound
from amani.backfill import (
    FORMATS,
    STATUSES,
    BackfillCommand,
    Counts,
    Source,
    source_open,
    source_records,
)
from audit.models import AuditAction
from audit.services import Actor
from events.queries import INSERT_COLUMNS, InsertedKey, events_insert_sql
from events.services import (
    CONFLICT,
    INVALID,
    WalletRef,
    event_row_build,
    event_rows_decide,
    run_with_deadlock_retry,
    wallet_refs_get,
)
from events.validation import EventInput, event_parse, provider_check
from wallets.models import Wallet

RESOURCE_TYPE = "wallet_event_backfill"
DEFAULT_BATCH_SIZE = 10_000
MAX_BATCH_SIZE = 50_000
CSV_COLUMNS = frozenset(
    {
        "wallet_id",
        "event_id",
        "event_type",
        "amount",
        "currency",
        "provider_event_id",
        "occurred_at",
        "metadata",
        "provider",
        "idempotency_key",
    }
)
CSV_REQUIRED = ("wallet_id", "event_type", "amount", "currency", "occurred_at")
WALLET_CACHE_SIZE = 100_000
STAGING = "backfill_event_staging"
# The staging table's columns and types, in COPY order (copy_line writes them): a record
# as parsed, its wallet by public id (the INSERT … SELECT joins the wallet for its pk and provider).
STAGING_COLUMNS = {
    "line": "integer",
    "public_id": "uuid",
    "wallet_public_id": "uuid",
    "event_type": "varchar(16)",
    "amount": "numeric",
    "currency": "varchar(3)",
    "provider_event_id": "varchar(255)",
    "idempotency_key": "varchar(255)",
    "metadata": "jsonb",
    "occurred_at": "timestamptz",
}


def _copy_text(value: str | None) -> str:
    r"""A text value as a field of COPY's text format: \N for NULL, backslash escapes for the rest.

    Only backslash, newline, carriage return and tab (the delimiter) need escaping;
    NUL and unpaired surrogates never get here (events.validation refuses them).
    """
    if value is None:
        return "\\N"
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t")


def copy_line(line_no: int, item: EventInput) -> str:
    """One staging row (STAGING_COLUMNS) in COPY's text format, newline included."""
    return (
        "\t".join(
            (
                str(line_no),
                "\\N" if item.event_id is None else str(item.event_id),
                str(item.wallet_id),
                item.event_type,
                str(item.amount),
                item.currency,
                _copy_text(item.provider_event_id),
                _copy_text(item.idempotency_key),
                _copy_text(json.dumps(item.metadata)),
                item.occurred_at.isoformat(),
            )
        )
        + "\n"
    )


@dataclass
class Batch:
    """One batch of records, prepared by the reader thread.

    `items[i]` was read at `lines[i]` and is staged as `copy_lines[i]`; `by_wallet`
    maps each (wallet_id, provider as sent) to the positions carrying it, so wallets
    are checked once per batch, not once per record.
    """

    first_line: int = 0
    last_line: int = 0
    read: int = 0
    rejected: list[tuple[int, str]] = field(default_factory=list)
    lines: list[int] = field(default_factory=list)
    items: list[EventInput] = field(default_factory=list)
    copy_lines: list[str] = field(default_factory=list)
    by_wallet: dict[tuple[uuid.UUID, str | None], list[int]] = field(default_factory=dict)


class Command(BackfillCommand):
    max_batch_size = MAX_BATCH_SIZE
    audit_action = AuditAction.BACKFILL_EVENTS_BATCH
    audit_resource_type = RESOURCE_TYPE
    help = (
        "Ingest wallet events from a JSONL or CSV file ('-' for standard input), deciding each record as "
        "POST /api/v1/events/batch does. Safe to rerun: every valid record is stored exactly once. "
        "Prints rejected records on stderr and one summary line on stdout; exits 1 when any record was "
        "conflicting or invalid, 2 on unusable arguments or input."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", help="Path of the export, or - for standard input.")
        parser.add_argument(
            "--format",
            choices=FORMATS,
            help="jsonl or csv; inferred from a .jsonl, .ndjson or .csv extension, jsonl otherwise (and for -).",
        )
        parser.add_argument(
            "--batch-size",
            type=int,
            default=DEFAULT_BATCH_SIZE,
            help=f"Records per transaction (1-{MAX_BATCH_SIZE}, default {DEFAULT_BATCH_SIZE}).",
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="Decide and count every record, then roll everything back."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        batch_size = options["batch_size"]
        self.batch_size_check(batch_size)
        # API.md lists `[--format jsonl|csv]` as optional: without it, and without an extension
        # that says otherwise, the input is JSONL (so `- < export.jsonl` works as written).
        source = source_open(options["file"], options["format"], default_format="jsonl")
        self.dry_run = options["dry_run"]
        self.source = source
        self.wallets: dict[uuid.UUID, WalletRef | None] = {}
        self.actor = Actor.command("backfill_wallet_events")
        total = Counts()
        self.progress_start(source.lines)
        try:
            with transaction.atomic() if self.dry_run else contextlib.nullcontext():
                self._staging_create()
                for batch in self._batches(source, batch_size):
                    total.add(self._batch(batch))
                if self.dry_run:
                    transaction.set_rollback(True)
        finally:
            self.bar.close()
            source.close()
        self.finish(total, "{count} record(s) were not stored (see the lines above).")

    # Reading (the reader thread) -------------------------------------------

    def _parse(self, source: Source, batch_size: int, put: Callable[[object], bool]) -> None:
        """Read, parse and prepare records into Batches; no database access here."""
        try:
            batch = Batch()
            now = dt.datetime.now(dt.UTC)
            records = source_records(source, columns=CSV_COLUMNS, required=CSV_REQUIRED, progress=self.bar.update)
            for line_no, data in records:
                if not batch.read:
                    batch.first_line = line_no
                batch.read += 1
                batch.last_line = line_no
                if isinstance(data, str):
                    batch.rejected.append((line_no, f"{INVALID} {data}"))
                else:
                    try:
                        item = event_parse(data, with_wallet=True, now=now)
                    except DomainError as exc:
                        batch.rejected.append((line_no, f"{INVALID} {exc.code}: {exc.message}"))
                    else:
                        batch.by_wallet.setdefault((item.wallet_id, item.provider), []).append(len(batch.items))
                        batch.lines.append(line_no)
                        batch.items.append(item)
                        batch.copy_lines.append(copy_line(line_no, item))
                if batch.read >= batch_size:
                    if not put(batch):
                        return
                    batch, now = Batch(), dt.datetime.now(dt.UTC)
            if not batch.read or put(batch):
                put(None)
        except BaseException as exc:  # handed to the main thread, which raises it
            put(exc)

    def _batches(self, source: Source, batch_size: int) -> Iterator[Batch]:
        """Prepared batches, read one batch ahead by a thread.

        The queue holds one batch, so memory stays flat whatever the file size.
        """
        handoff: queue.Queue[object] = queue.Queue(maxsize=1)
        stop = threading.Event()

        def put(item: object) -> bool:
            while not stop.is_set():
                try:
                    handoff.put(item, timeout=0.1)
                    return True
                except queue.Full:
                    continue
            return False

        reader = threading.Thread(target=self._parse, args=(source, batch_size, put), daemon=True)
        reader.start()
        try:
            while (item := handoff.get()) is not None:
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            stop.set()
            reader.join(timeout=5)  # a reader blocked on standard input is a daemon: left behind

    # Deciding and loading (the main thread) --------------------------------

    def _wallets_for(self, public_ids: set[uuid.UUID]) -> None:
        missing = public_ids - self.wallets.keys()
        if not missing:
            return
        if len(self.wallets) + len(missing) > WALLET_CACHE_SIZE:
            self.wallets.clear()
            missing = public_ids
        found = wallet_refs_get(public_ids=missing)
        for public_id in missing:
            self.wallets[public_id] = found.get(public_id)

    def _wallet_rejections(self, batch: Batch) -> dict[int, str]:
        """Reasons by position for the items whose wallet is unknown or has another provider."""
        self._wallets_for({wallet_id for wallet_id, _ in batch.by_wallet})
        reasons: dict[int, str] = {}
        for (wallet_id, _), positions in batch.by_wallet.items():
            wallet = self.wallets.get(wallet_id)
            try:
                if wallet is None:
                    raise NotFound(f"No wallet has the wallet_id {wallet_id}.")
                provider_check(batch.items[positions[0]], wallet.provider)
            except DomainError as exc:
                reasons.update(dict.fromkeys(positions, f"{INVALID} {exc.code}: {exc.message}"))
        return reasons

    def _staging_create(self) -> None:
        """The session's staging table (STAGING_COLUMNS), emptied at every commit."""
        with connection.cursor() as cursor:
            columns = ", ".join(f"{name} {kind}" for name, kind in STAGING_COLUMNS.items())
            cursor.execute(f"CREATE TEMPORARY TABLE IF NOT EXISTS {STAGING} ({columns}) ON COMMIT DELETE ROWS")

    def _copy_insert(self, lines: list[str]) -> list[InsertedKey] | None:
        """COPY the staging lines, then insert them in order (and bucket the new ones) in one statement.

        Returns the keys of the inserted rows, or None when every row was inserted.
        """
        select = ", ".join(
            {
                "public_id": "COALESCE(s.public_id, gen_random_uuid())",  # cheaper than uuid4() per record here
                "wallet_id": "w.id",
                "provider": "w.provider",
                "created_at": "now()",
            }.get(column, f"s.{column}")
            for column in INSERT_COLUMNS
        )
        source = (
            f"SELECT {select} FROM {STAGING} s JOIN {Wallet._meta.db_table} w "  # noqa: S608 (names only)
            "ON w.public_id = s.wallet_public_id ORDER BY s.line"
        )
        with connection.cursor() as cursor:
            # The reader thread formatted the lines: here they are only sent.
            with cursor.cursor.copy(f"COPY {STAGING} ({', '.join(STAGING_COLUMNS)}) FROM STDIN") as copy:
                copy.write("".join(lines).encode())
            cursor.execute(events_insert_sql(source))
            # Usually every row is new: then the returned keys are not needed, so not decoded.
            inserted = None if cursor.rowcount == len(lines) else cursor.fetchall()
            if self.dry_run:  # one transaction for the whole run: ON COMMIT never empties the table
                cursor.execute(f"TRUNCATE {STAGING}")
        return inserted

    def _batch(self, batch: Batch) -> Counts:
        counts = Counts(read=batch.read)
        rejected = list(batch.rejected)
        refused = self._wallet_rejections(batch)
        rejected += [(batch.lines[position], reason) for position, reason in refused.items()]
        keep = [position for position in range(len(batch.items)) if position not in refused]
        counts.invalid = len(rejected)
        line_status: list[tuple[int, Any]] = []

        def store() -> Counts:
            line_status.clear()
            batch_counts = Counts(read=counts.read, invalid=counts.invalid)
            if keep:
                inserted = self._copy_insert([batch.copy_lines[position] for position in keep])
                if inserted is None:
                    batch_counts.created = len(keep)
                else:  # some were there before: decided as the batch endpoint decides
                    now = dt.datetime.now(dt.UTC)
                    rows = [
                        event_row_build(item, self.wallets[item.wallet_id], now=now, generate_id=False)
                        for item in (batch.items[position] for position in keep)
                    ]
                    for position, decision in zip(keep, event_rows_decide(rows, inserted), strict=True):
                        setattr(batch_counts, decision.status, getattr(batch_counts, decision.status) + 1)
                        if decision.status == CONFLICT:
                            line_status.append((batch.lines[position], decision.error))
            self.batch_audit((batch.first_line, batch.last_line), batch_counts, dry_run=self.dry_run)
            return batch_counts

        counts = run_with_deadlock_retry(store)
        for line_no, error in line_status:
            reason = f"{error.code}: {error.message} existing_event_id={error.extra.get('existing_event_id')}"
            rejected.append((line_no, f"{CONFLICT} {reason}"))
        for line_no, reason in sorted(rejected):
            self.report(f"line {line_no}: {reason}")
        if not self.dry_run:
            metrics.event_batch_observe(summary={name: getattr(counts, name) for name in STATUSES})
        return counts
