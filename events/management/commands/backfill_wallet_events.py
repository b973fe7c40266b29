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
import csv
import datetime as dt
import hashlib
import io
import json
import os
import queue
import stat
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import IO, Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection, transaction
from tqdm import tqdm

from amani import metrics
from amani.api.errors import DomainError, NotFound
from audit.services import Actor, audit_record
from events.models import WalletEvent
from events.services import (
    CONFLICT,
    CREATED,
    INSERT_RETURNING,
    INVALID,
    STATUSES,
    EventRow,
    InsertedKey,
    WalletRef,
    event_row_build,
    event_rows_store,
    run_with_deadlock_retry,
    wallet_refs_get,
)
from events.validation import event_parse, json_loads_strict, provider_check

ACTION = "backfill_events_batch"
RESOURCE_TYPE = "wallet_event_backfill"
FORMATS = ("jsonl", "csv")
EXTENSIONS = {".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv"}
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
_COLUMNS = (
    "public_id",
    "wallet_id",
    "provider",
    "event_type",
    "amount",
    "currency",
    "provider_event_id",
    "idempotency_key",
    "metadata",
    "occurred_at",
    "created_at",
)


class UnusableInput(CommandError):
    def __init__(self, message: str) -> None:
        super().__init__(message, returncode=2)


@dataclass
class Counts:
    read: int = 0
    created: int = 0
    duplicate: int = 0
    conflict: int = 0
    invalid: int = 0

    def add(self, other: Counts) -> None:
        for name in ("read", *STATUSES):
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def line(self) -> str:
        return " ".join(f"{name}={getattr(self, name)}" for name in ("read", *STATUSES))


@dataclass
class Source:
    name: str
    stream: IO[bytes]
    sha256: str | None
    lines: int | None
    format: str
    _closers: list[Any] = field(default_factory=list)


class Command(BaseCommand):
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
        if not 1 <= batch_size <= MAX_BATCH_SIZE:
            raise UnusableInput(f"--batch-size must be between 1 and {MAX_BATCH_SIZE}.")
        if connection.vendor != "postgresql":
            raise UnusableInput("backfill_wallet_events needs PostgreSQL (it loads with COPY).")
        source = self._open(options["file"], options["format"])
        self.dry_run = options["dry_run"]
        self.source = source
        self.wallets: dict[Any, WalletRef | None] = {}
        self.staging_for: object = None
        self.actor = Actor.command("backfill_wallet_events")
        total = Counts()
        self.bar = tqdm(
            total=source.lines,
            unit="line",
            file=sys.stderr,
            disable=not self._stderr_is_terminal(),
            dynamic_ncols=True,
        )
        try:
            with transaction.atomic() if self.dry_run else contextlib.nullcontext():
                for batch in self._parsed_batches(source, batch_size):
                    total.add(self._batch(batch))
                if self.dry_run:
                    transaction.set_rollback(True)
        finally:
            self.bar.close()
            source.stream.close()
        self.stdout.write(total.line())
        if total.conflict or total.invalid:
            raise CommandError(
                f"{total.conflict + total.invalid} record(s) were not stored (see the lines above).", returncode=1
            )

    def _stderr_is_terminal(self) -> bool:
        stream = getattr(self.stderr, "_out", self.stderr)
        return bool(getattr(stream, "isatty", lambda: False)())

    # Input -----------------------------------------------------------------

    def _open(self, path: str, fmt: str | None) -> Source:
        # API.md lists `[--format jsonl|csv]` as optional: without it, and without an extension
        # that says otherwise, the input is JSONL (so `- < export.jsonl` works as written).
        if path == "-":
            return Source(name="-", stream=sys.stdin.buffer, sha256=None, lines=None, format=fmt or "jsonl")
        if fmt is None:
            fmt = EXTENSIONS.get(os.path.splitext(path)[1].lower(), "jsonl")
        try:
            stream = open(path, "rb")  # noqa: SIM115 (closed in handle)
        except OSError as exc:
            raise UnusableInput(f"Cannot open {path}: {exc.strerror}.") from None
        sha256 = lines = None
        if stat.S_ISREG(os.fstat(stream.fileno()).st_mode):
            # A streaming pre-pass: the audit records name the file by content, and the bar knows its length.
            digest, lines = hashlib.sha256(), 0
            for chunk in iter(lambda: stream.read(1 << 20), b""):
                digest.update(chunk)
                lines += chunk.count(b"\n")
            stream.seek(0)
            sha256 = digest.hexdigest()
        elif stat.S_ISDIR(os.fstat(stream.fileno()).st_mode):
            raise UnusableInput(f"{path} is a directory.")
        return Source(name=os.path.basename(path), stream=stream, sha256=sha256, lines=lines, format=fmt)

    def _records(self, source: Source) -> Iterator[tuple[int, Any]]:
        """(line number, dict or an error message) per record; blank lines are not records."""
        if source.format == "jsonl":
            yield from self._jsonl(source.stream)
        else:
            yield from self._csv(source.stream)

    def _jsonl(self, stream: IO[bytes]) -> Iterator[tuple[int, Any]]:
        for line_no, raw in enumerate(stream, 1):
            self.bar.update(1)
            if line_no == 1:
                raw = raw.removeprefix(b"\xef\xbb\xbf")  # a UTF-8 byte order mark
            if not raw.strip():
                continue
            try:
                data = json_loads_strict(raw)
            except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
                yield line_no, "invalid_json: the line is not valid UTF-8 JSON."
                continue
            if not isinstance(data, dict):
                yield line_no, "invalid_json: the line is not a JSON object."
                continue
            yield line_no, data

    def _csv(self, stream: IO[bytes]) -> Iterator[tuple[int, Any]]:
        text = io.TextIOWrapper(stream, encoding="utf-8-sig", newline="")
        reader = csv.reader(text)
        try:
            header = next(reader, None)
            if header is None:
                return
            self.bar.update(reader.line_num)
            names = [name.strip() for name in header]
            unknown = sorted(set(names) - CSV_COLUMNS)
            missing = [name for name in CSV_REQUIRED if name not in names]
            if unknown or missing or len(set(names)) != len(names):
                raise UnusableInput(
                    "Bad CSV header: "
                    + "; ".join(
                        part
                        for part in (
                            f"unknown column(s) {', '.join(unknown)}" if unknown else "",
                            f"missing column(s) {', '.join(missing)}" if missing else "",
                            "repeated column names" if len(set(names)) != len(names) else "",
                        )
                        if part
                    )
                    + f". Columns: {', '.join(sorted(CSV_COLUMNS))}."
                )
            previous = reader.line_num
            for row in reader:
                line_no, previous = previous + 1, reader.line_num
                self.bar.update(reader.line_num - line_no + 1)
                if not row:
                    continue
                if len(row) != len(names):
                    yield line_no, f"validation_error: expected {len(names)} columns, found {len(row)}."
                    continue
                data: dict[str, Any] = {name: cell for name, cell in zip(names, row, strict=True) if cell != ""}
                metadata = data.get("metadata")
                if metadata is not None:
                    # Unparsable text stays text: the parser reports "metadata: Must be a JSON object."
                    with contextlib.suppress(ValueError, RecursionError):
                        data["metadata"] = json_loads_strict(metadata)
                yield line_no, data
        except UnicodeDecodeError as exc:
            raise UnusableInput(f"The file is not UTF-8 text (after line {reader.line_num}): {exc.reason}.") from None
        except csv.Error as exc:
            raise UnusableInput(f"Unreadable CSV after line {reader.line_num}: {exc}.") from None

    # Loading ---------------------------------------------------------------

    def _copy_insert(self, rows: Sequence[EventRow]) -> list[InsertedKey] | None:
        """COPY the rows into the session's staging table, then move them in order with ON CONFLICT DO NOTHING."""
        table = WalletEvent._meta.db_table
        columns = ", ".join(_COLUMNS)
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
            for line_no, data in self._records(source):
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
            audit_record(
                action=ACTION,
                actor=self.actor,
                resource_type=RESOURCE_TYPE,
                resource_id=self.source.sha256 or "stdin",
                details={
                    "file": self.source.name,
                    "sha256": self.source.sha256,
                    "first_line": records[0][0],
                    "last_line": records[-1][0],
                    "dry_run": self.dry_run,
                    **{name: getattr(batch_counts, name) for name in ("read", *STATUSES)},
                },
            )
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
            self._report(f"line {line_no}: {reason}")
        if not self.dry_run:
            metrics.event_batch_observe(summary={name: getattr(counts, name) for name in STATUSES})
        return counts

    def _report(self, message: str) -> None:
        if self.bar.disable:
            self.stderr.write(message)
        else:
            self.bar.write(message, file=sys.stderr)
