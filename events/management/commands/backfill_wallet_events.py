"""Ingest a provider export (JSONL or CSV) of wallet events, resumably.

Every record is decided as POST /api/v1/events/batch decides an item (the same
parser, events.validation, and the same decision code, events.services). Each
batch is loaded with COPY into a temporary staging table and moved with one
`INSERT … SELECT … ON CONFLICT DO NOTHING RETURNING`; its events, bucket upserts and
one audit record commit together. Killed at any moment, a rerun re-decides every
record: committed batches come back as duplicates and the rest are created, so every
valid record ends up stored exactly once.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import queue
import threading
from collections.abc import Callable, Iterator, Sequence
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
    UnusableInput,
    source_open,
    source_records,
)
from audit.services import Actor
from events.models import WalletEvent
from events.services import (
    CONFLICT,
    CREATED,
    INSERT_COLUMNS,
    INSERT_RETURNING,
    INVALID,
    EventRow,
    InsertedKey,
    WalletRef,
    event_row_build,
    event_rows_store,
    run_with_deadlock_retry,
    wallet_refs_get,
)
from events.validation import event_parse, provider_check

ACTION = "backfill_events_batch"
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


class Command(BackfillCommand):
    max_batch_size = MAX_BATCH_SIZE
    audit_action = ACTION
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
        if connection.vendor != "postgresql":
            raise UnusableInput("backfill_wallet_events needs PostgreSQL (it loads with COPY).")
        # API.md lists `[--format jsonl|csv]` as optional: without it, and without an extension
        # that says otherwise, the input is JSONL (so `- < export.jsonl` works as written).
        source = source_open(options["file"], options["format"], default_format="jsonl")
        self.dry_run = options["dry_run"]
        self.source = source
        self.wallets: dict[Any, WalletRef | None] = {}
        self.staging_for: object = None
        self.actor = Actor.command("backfill_wallet_events")
        total = Counts()
        self.progress_start(source.lines)
        try:
            with transaction.atomic() if self.dry_run else contextlib.nullcontext():
                for batch in self._parsed_batches(source, batch_size):
                    total.add(self._batch(batch))
                if self.dry_run:
                    transaction.set_rollback(True)
        finally:
            self.bar.close()
            source.close()
        self.finish(total, "{count} record(s) were not stored (see the lines above).")

    # Loading ---------------------------------------------------------------

    def _copy_insert(self, rows: Sequence[EventRow]) -> list[InsertedKey] | None:
        """COPY the rows into the session's staging table, then move them in order with ON CONFLICT DO NOTHING."""
        table = WalletEvent._meta.db_table
        columns = ", ".join(INSERT_COLUMNS)
        with connection.cursor() as cursor:
            if self.staging_for is not connection.connection:  # once per database session
                cursor.execute(
                    f"CREATE TEMPORARY TABLE IF NOT EXISTS {STAGING} (ord integer, public_id uuid, wallet_id bigint, "
                    "provider varchar(32), event_type varchar(16), amount numeric, currency varchar(3), "
                    "provider_event_id varchar(255), idempotency_key varchar(255), metadata jsonb, "
                    "occurred_at timestamptz, created_at timestamptz) ON COMMIT DELETE ROWS"
                )
                self.staging_for = connection.connection
            dumps = json.dumps
            with cursor.cursor.copy(f"COPY {STAGING} (ord, {columns}) FROM STDIN") as copy:
                write = copy.write_row
                for ord_, row in enumerate(rows):
                    write(
                        (
                            ord_,
                            row.public_id,
                            row.wallet_id,
                            row.provider,
                            row.event_type,
                            row.amount,
                            row.currency,
                            row.provider_event_id,
                            row.idempotency_key,
                            dumps(row.metadata),
                            row.occurred_at,
                            row.created_at,
                        )
                    )
            # Ids the export did not give are generated here: cheaper than uuid4() per record in Python.
            select = columns.replace("public_id", "COALESCE(public_id, gen_random_uuid())", 1)
            cursor.execute(
                f"INSERT INTO {table} ({columns}) SELECT {select} FROM {STAGING} "  # noqa: S608 (names only)
                f"ORDER BY ord ON CONFLICT DO NOTHING {INSERT_RETURNING}"
            )
            # Usually every row is new: then the returned keys are not needed, so not decoded.
            inserted = None if cursor.rowcount == len(rows) else cursor.fetchall()
            if self.dry_run:  # one transaction for the whole run: ON COMMIT never empties the table
                cursor.execute(f"TRUNCATE {STAGING}")
        return inserted

    # Deciding --------------------------------------------------------------

    def _wallets_for(self, public_ids: set[Any]) -> None:
        missing = public_ids - self.wallets.keys()
        if not missing:
            return
        if len(self.wallets) + len(missing) > WALLET_CACHE_SIZE:
            self.wallets.clear()
        found = wallet_refs_get(public_ids=missing)
        for public_id in missing:
            self.wallets[public_id] = found.get(public_id)

    def _parse(self, source: Source, batch_size: int, put: Callable[[object], bool]) -> None:
        """Read and parse records into batches of (line number, EventInput or rejection reason)."""
        try:
            batch: list[tuple[int, Any]] = []
            now = dt.datetime.now(dt.UTC)
            records = source_records(source, columns=CSV_COLUMNS, required=CSV_REQUIRED, progress=self.bar.update)
            for line_no, data in records:
                if isinstance(data, str):
                    batch.append((line_no, f"{INVALID} {data}"))
                else:
                    try:
                        batch.append((line_no, event_parse(data, with_wallet=True, now=now)))
                    except DomainError as exc:
                        batch.append((line_no, f"{INVALID} {exc.code}: {exc.message}"))
                if len(batch) >= batch_size:
                    if not put(batch):
                        return
                    batch, now = [], dt.datetime.now(dt.UTC)
            if not batch or put(batch):
                put(None)
        except BaseException as exc:  # handed to the main thread, which raises it
            put(exc)

    def _parsed_batches(self, source: Source, batch_size: int) -> Iterator[list[tuple[int, Any]]]:
        """Parsed batches, read one batch ahead by a thread.

        Parsing is most of the command's Python work; the thread does it while the main
        thread waits on PostgreSQL for the previous batch (the wait releases the GIL).
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

    def _batch(self, records: list[tuple[int, Any]]) -> Counts:
        counts = Counts(read=len(records))
        now = dt.datetime.now(dt.UTC)
        rejected: list[tuple[int, str]] = [record for record in records if isinstance(record[1], str)]
        parsed = [record for record in records if not isinstance(record[1], str)]
        self._wallets_for({item.wallet_id for _, item in parsed})
        rows: list[EventRow] = []
        row_lines: list[int] = []
        for line_no, item in parsed:
            wallet = self.wallets.get(item.wallet_id)
            try:
                if wallet is None:
                    raise NotFound(f"No wallet has the wallet_id {item.wallet_id}.")
                provider_check(item, wallet.provider)
            except DomainError as exc:
                rejected.append((line_no, f"{INVALID} {exc.code}: {exc.message}"))
                continue
            rows.append(event_row_build(item, wallet, now=now, generate_id=False))
            row_lines.append(line_no)
        counts.invalid = len(rejected)

        def store() -> list[Any]:
            decisions = event_rows_store(rows=rows, insert=self._copy_insert)
            batch_counts = Counts(read=counts.read, invalid=counts.invalid)
            for decision in decisions:
                setattr(batch_counts, decision.status, getattr(batch_counts, decision.status) + 1)
            self.batch_audit(records, batch_counts, dry_run=self.dry_run)
            return decisions

        decisions = run_with_deadlock_retry(store)
        for line_no, decision in zip(row_lines, decisions, strict=True):
            if decision.status == CONFLICT:
                error = decision.error
                reason = f"{error.code}: {error.message} existing_event_id={error.extra.get('existing_event_id')}"
                rejected.append((line_no, f"{CONFLICT} {reason}"))
                counts.conflict += 1
            elif decision.status == CREATED:
                counts.created += 1
            else:
                counts.duplicate += 1
        for line_no, reason in sorted(rejected):
            self.report(f"line {line_no}: {reason}")
        if not self.dry_run:
            metrics.event_batch_observe(summary={name: getattr(counts, name) for name in STATUSES})
        return counts
