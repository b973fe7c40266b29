"""Import wallet registry rows (JSONL or CSV) with the registry's own rules, resumably.

Each row is parsed by the API's serializer and registered by `wallet_register`, so a
row is decided exactly as `POST /api/v1/wallets` with its `Idempotency-Key` would be:
created, a replay (`duplicate`), `wallet_claimed` or `idempotency_key_reused`
(`conflict`), or `invalid`. Rows commit in batches, each with one audit record naming
the file, its SHA-256 and the line range. Killed at any moment and run again, the
committed batches come back as duplicates and the rest are created.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
import os
import stat
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction
from tqdm import tqdm

from amani.api.errors import DomainError
from audit.services import Actor, audit_record
from wallets.api.serializers import IDEMPOTENCY_KEY_RE, WalletRegisterSerializer
from wallets.services import wallet_register

ACTION = "backfill_wallets_batch"
RESOURCE_TYPE = "wallet_backfill"
FORMATS = ("jsonl", "csv")
EXTENSIONS = {".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv"}
CSV_COLUMNS = frozenset(
    {"user_id", "provider", "provider_account_id", "provider_customer_id", "metadata", "idempotency_key"}
)
CSV_REQUIRED = ("user_id", "provider", "provider_account_id")
DEFAULT_BATCH_SIZE = 500
MAX_BATCH_SIZE = 10_000
STATUSES = ("created", "duplicate", "conflict", "invalid")


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


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _json_loads(text: str | bytes) -> Any:
    return json.loads(text, parse_constant=_refuse_constant)


def _fields_message(errors: dict[str, Any]) -> str:
    parts = []
    for name, messages in errors.items():
        text = " ".join(str(m) for m in messages) if isinstance(messages, list) else str(messages)
        parts.append(f"{name}: {text}")
    return "; ".join(parts)


class Command(BaseCommand):
    help = (
        "Register wallets from a JSONL or CSV file ('-' for standard input) with the registry's rules "
        "(fields user_id, provider, provider_account_id, provider_customer_id, metadata, idempotency_key). "
        "Safe to rerun. Rejected rows go to stderr with their line numbers; one summary line on stdout; "
        "exit 1 when any row was conflicting or invalid, 2 on unusable arguments or input."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", help="Path of the file, or - for standard input.")
        parser.add_argument("--format", choices=FORMATS, help="jsonl or csv; inferred from the file extension.")
        parser.add_argument(
            "--batch-size",
            type=int,
            default=DEFAULT_BATCH_SIZE,
            help=f"Rows per transaction (1-{MAX_BATCH_SIZE}, default {DEFAULT_BATCH_SIZE}).",
        )
        parser.add_argument("--dry-run", action="store_true", help="Decide and count every row, then roll back.")

    def handle(self, *args: Any, **options: Any) -> None:
        batch_size = options["batch_size"]
        if not 1 <= batch_size <= MAX_BATCH_SIZE:
            raise UnusableInput(f"--batch-size must be between 1 and {MAX_BATCH_SIZE}.")
        self.dry_run = options["dry_run"]
        self.actor = Actor.command("backfill_wallets")
        stream, self.name, self.sha256, lines, fmt = self._open(options["file"], options["format"])
        self.bar = tqdm(
            total=lines, unit="line", file=sys.stderr, disable=not self._stderr_is_terminal(), dynamic_ncols=True
        )
        total = Counts()
        try:
            # A dry run decides every row in one transaction (so repeats inside the file are seen), then rolls back.
            with transaction.atomic() if self.dry_run else contextlib.nullcontext():
                batch: list[tuple[int, Any]] = []
                for record in self._jsonl(stream) if fmt == "jsonl" else self._csv(stream):
                    batch.append(record)
                    if len(batch) >= batch_size:
                        total.add(self._batch(batch))
                        batch = []
                if batch:
                    total.add(self._batch(batch))
                if self.dry_run:
                    transaction.set_rollback(True)
        finally:
            self.bar.close()
            if stream is not sys.stdin.buffer:
                stream.close()
        self.stdout.write(total.line())
        if total.conflict or total.invalid:
            raise CommandError(
                f"{total.conflict + total.invalid} row(s) were not registered (see stderr).", returncode=1
            )

    def _stderr_is_terminal(self) -> bool:
        stream = getattr(self.stderr, "_out", self.stderr)
        return bool(getattr(stream, "isatty", lambda: False)())

    # Input -----------------------------------------------------------------

    def _open(self, path: str, fmt: str | None) -> tuple[IO[bytes], str, str | None, int | None, str]:
        if path == "-":
            if fmt is None:
                raise UnusableInput("Reading standard input needs --format jsonl or --format csv.")
            return sys.stdin.buffer, "-", None, None, fmt
        if fmt is None:
            fmt = EXTENSIONS.get(os.path.splitext(path)[1].lower())
            if fmt is None:
                raise UnusableInput(f"Cannot tell the format of {path!r} from its extension; pass --format.")
        try:
            stream = open(path, "rb")  # noqa: SIM115 (closed in handle)
        except OSError as exc:
            raise UnusableInput(f"Cannot open {path}: {exc.strerror}.") from None
        mode = os.fstat(stream.fileno()).st_mode
        if stat.S_ISDIR(mode):
            stream.close()
            raise UnusableInput(f"{path} is a directory.")
        sha256 = lines = None
        if stat.S_ISREG(mode):
            # A streaming pre-pass: audit records name the file by content, and the bar knows its length.
            digest, lines = hashlib.sha256(), 0
            for chunk in iter(lambda: stream.read(1 << 20), b""):
                digest.update(chunk)
                lines += chunk.count(b"\n")
            stream.seek(0)
            sha256 = digest.hexdigest()
        return stream, os.path.basename(path), sha256, lines, fmt

    def _jsonl(self, stream: IO[bytes]) -> Iterator[tuple[int, Any]]:
        """(line number, dict or the reason it is not one); blank lines are not records."""
        for line_no, raw in enumerate(stream, 1):
            self.bar.update(1)
            if not raw.strip():
                continue
            try:
                data = _json_loads(raw)
            except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
                yield line_no, "invalid_json: the line is not valid UTF-8 JSON."
                continue
            if not isinstance(data, dict):
                yield line_no, "invalid_json: the line is not a JSON object."
                continue
            yield line_no, data

    def _csv(self, stream: IO[bytes]) -> Iterator[tuple[int, Any]]:
        """Rows of a CSV file with a header (line 1); empty cells are absent fields, metadata is JSON text."""
        reader = csv.reader(io.TextIOWrapper(stream, encoding="utf-8-sig", newline=""))
        try:
            header = next(reader, None)
            if header is None:
                return
            self.bar.update(reader.line_num)
            names = [name.strip() for name in header]
            unknown = sorted(set(names) - CSV_COLUMNS)
            missing = [name for name in CSV_REQUIRED if name not in names]
            if unknown or missing or len(set(names)) != len(names):
                problems = [
                    f"unknown column(s) {', '.join(unknown)}" if unknown else "",
                    f"missing column(s) {', '.join(missing)}" if missing else "",
                    "repeated column names" if len(set(names)) != len(names) else "",
                ]
                raise UnusableInput(
                    f"Bad CSV header: {'; '.join(p for p in problems if p)}. Columns: {', '.join(sorted(CSV_COLUMNS))}."
                )
            previous = reader.line_num
            for row in reader:
                # A quoted cell may span lines: a row is reported at the line it starts on.
                line_no, previous = previous + 1, reader.line_num
                self.bar.update(reader.line_num - line_no + 1)
                if not row:
                    continue
                if len(row) != len(names):
                    yield line_no, f"validation_error: expected {len(names)} columns, found {len(row)}."
                    continue
                data: dict[str, Any] = {name: cell for name, cell in zip(names, row, strict=True) if cell != ""}
                if "metadata" in data:
                    # Unparsable text stays text, and the serializer says "metadata: Must be a JSON object."
                    with contextlib.suppress(ValueError, RecursionError):
                        data["metadata"] = _json_loads(data["metadata"])
                yield line_no, data
        except UnicodeDecodeError as exc:
            raise UnusableInput(f"The file is not UTF-8 text (after line {reader.line_num}): {exc.reason}.") from None
        except csv.Error as exc:
            raise UnusableInput(f"Unreadable CSV after line {reader.line_num}: {exc}.") from None

    # Deciding --------------------------------------------------------------

    def _decide(self, data: Any) -> tuple[str, str | None]:
        """(status, reason) for one row, registering it when it is new."""
        if isinstance(data, str):
            return "invalid", data
        serializer = WalletRegisterSerializer(data=data)
        errors = {} if serializer.is_valid() else dict(serializer.errors)
        idempotency_key = data.get("idempotency_key")
        if idempotency_key is not None and not (
            isinstance(idempotency_key, str) and IDEMPOTENCY_KEY_RE.fullmatch(idempotency_key)
        ):
            errors["idempotency_key"] = ["Must be 1-255 printable ASCII characters."]
        if errors:
            return "invalid", f"validation_error: {_fields_message(errors)}"
        try:
            registration = wallet_register(
                **serializer.validated_data, idempotency_key=idempotency_key, actor=self.actor
            )
        except DomainError as exc:
            return "conflict", f"{exc.code}: {exc.message}"
        if registration.created:
            return "created", None
        return "duplicate", None

    def _batch(self, records: list[tuple[int, Any]]) -> Counts:
        counts = Counts(read=len(records))
        rejected: list[tuple[int, str, str]] = []
        with transaction.atomic():
            for line_no, data in records:
                status, reason = self._decide(data)
                setattr(counts, status, getattr(counts, status) + 1)
                if reason is not None:
                    rejected.append((line_no, status, reason))
            audit_record(
                action=ACTION,
                actor=self.actor,
                resource_type=RESOURCE_TYPE,
                resource_id=self.sha256 or "stdin",
                details={
                    "file": self.name,
                    "sha256": self.sha256,
                    "first_line": records[0][0],
                    "last_line": records[-1][0],
                    **{name: getattr(counts, name) for name in ("read", *STATUSES)},
                },
            )
        # Reported once the batch has committed, so a reported line is a decided line.
        for line_no, status, reason in rejected:
            self._report(f"line {line_no}: {status} {reason}")
        return counts

    def _report(self, message: str) -> None:
        if self.bar.disable:
            self.stderr.write(message)
        else:
            self.bar.write(message, file=sys.stderr)
