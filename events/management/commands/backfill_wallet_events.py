"""Ingest a provider export (JSONL or CSV) of wallet events, resumably.

Every record is decided as POST /api/v1/events/batch decides an item: the same
parser (events.validation) and the same store step (events.services.events_store,
through EventBackfill). Each batch is loaded with COPY into a temporary staging table
and moved with one `INSERT … SELECT … ON CONFLICT DO NOTHING RETURNING` that also
upserts the balance buckets of the new rows; its events, buckets and one audit record
commit together. Killed at any moment, a rerun re-decides every record: committed
batches come back as duplicates and the rest are created, so every valid record ends
up stored exactly once.

This command reads, and reports. Two threads. A reader parses the file a batch ahead and
prepares everything that does not need the database (events.services.EventLoad: each
record's staging row as COPY text, the wallets to check); the main thread, which owns
the database connection, hands each batch to EventBackfill.store. PostgreSQL's work on
one batch (the GIL is released while waiting on it) overlaps the parsing of the next.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import queue
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from django.core.management.base import CommandParser
from django.db import transaction

from amani import metrics
from amani.actors import Actor
from amani.backfill import FORMATS, BackfillCommand, Counts, Source, source_open, source_records
from amani.errors import DomainError
from audit.models import AuditAction, AuditResource
from audit.services import audit_record
from events.services import CONFLICT, INVALID, EventBackfill, EventLoad
from events.validation import event_parse

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


@dataclass
class Batch:
    """One batch of records, read by the reader thread: the parsed ones in `load`, the rest in `rejected`."""

    first_line: int = 0
    last_line: int = 0
    read: int = 0
    rejected: list[tuple[int, str]] = field(default_factory=list)
    load: EventLoad = field(default_factory=EventLoad)


class Command(BackfillCommand):
    max_batch_size = MAX_BATCH_SIZE
    audit_action = AuditAction.BACKFILL_EVENTS_BATCH
    audit_resource_type = AuditResource.WALLET_EVENT_BACKFILL
    audit_record = staticmethod(audit_record)
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
        dry_run = options["dry_run"]
        self.source = source
        self.actor = Actor.command("backfill_wallet_events")
        total = Counts()
        self.progress_start(source.lines)
        try:
            # A dry run stores every batch in one transaction, rolled back at the end, and counts nothing.
            with (
                transaction.atomic() if dry_run else contextlib.nullcontext(),
                metrics.outcomes_uncounted() if dry_run else contextlib.nullcontext(),
            ):
                backfill = EventBackfill()
                for batch in self._batches(source, batch_size):
                    total.add(self._batch(backfill, batch, dry_run=dry_run))
                if dry_run:
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
                        batch.load.add(line_no, item)
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

    # Storing and reporting (the main thread) -----------------------------

    def _batch(self, backfill: EventBackfill, batch: Batch, *, dry_run: bool) -> Counts:
        def audit(summary: dict[str, int]) -> None:
            counts = Counts(read=batch.read, **summary)
            self.batch_audit((batch.first_line, batch.last_line), counts, dry_run=dry_run)

        stored = backfill.store(batch.load, invalid=len(batch.rejected), audit=audit)
        rejected = list(batch.rejected)
        for line_no, status, error in stored.refused:
            reason = f"{status} {error.code}: {error.message}"
            if status == CONFLICT:
                reason += f" existing_event_id={error.extra.get('existing_event_id')}"
            rejected.append((line_no, reason))
        for line_no, reason in sorted(rejected):
            self.report(f"line {line_no}: {reason}")
        return Counts(read=batch.read, **stored.summary)
