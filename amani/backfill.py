"""What the backfill commands share: the Operations contract's rules for reading an export.

`backfill_wallets` and `backfill_wallet_events` both read JSONL or CSV from a path or `-`
(standard input), number records by line from 1 (a CSV header is line 1, a quoted cell
spanning lines is reported at the line its row starts on), report rejected records on
stderr as `line N: <status> <reason>`, print one `read=N created=N duplicate=N conflict=N
invalid=N` line on stdout and exit 0, 1 (any conflict or invalid record) or 2 (unusable
arguments or input). The progress bar is drawn only when stderr is a terminal.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import os
import stat
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import IO, Any

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from amani.actors import Actor
from amani.json_bounds import document_loads

FORMATS = ("jsonl", "csv")
EXTENSIONS = {".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv"}
STATUSES = ("created", "duplicate", "conflict", "invalid")
_UTF8_BOM = b"\xef\xbb\xbf"


class UnusableInput(CommandError):
    """Unusable arguments or input: exit status 2."""

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

    def as_dict(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in ("read", *STATUSES)}

    def line(self) -> str:
        return " ".join(f"{name}={value}" for name, value in self.as_dict().items())


@dataclass
class Source:
    name: str
    stream: IO[bytes]
    sha256: str | None
    lines: int | None
    format: str

    def close(self) -> None:
        if self.stream is not sys.stdin.buffer:
            self.stream.close()


def json_loads_strict(text: str | bytes) -> Any:
    """A JSONL line or CSV metadata cell, read as the API reads a body (amani.json_bounds);
    ValueError if it is not UTF-8 JSON within the bound."""
    if isinstance(text, bytes):
        text = text.decode("utf-8")  # UnicodeDecodeError is a ValueError
    return document_loads(text)


def source_open(path: str, fmt: str | None, *, default_format: str | None = None) -> Source:
    """Open `path` (`-`: standard input); without `fmt`, the extension names it, else `default_format`.

    A regular file is read once ahead (streaming) for its SHA-256 and its line count.
    """
    if path == "-":
        fmt = fmt or default_format
        if fmt is None:
            raise UnusableInput("Reading standard input needs --format jsonl or --format csv.")
        return Source(name="-", stream=sys.stdin.buffer, sha256=None, lines=None, format=fmt)
    if fmt is None:
        fmt = EXTENSIONS.get(os.path.splitext(path)[1].lower(), default_format)
        if fmt is None:
            raise UnusableInput(f"Cannot tell the format of {path!r} from its extension; pass --format.")
    try:
        stream = open(path, "rb")  # noqa: SIM115 (closed by Source.close)
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
    return Source(name=os.path.basename(path), stream=stream, sha256=sha256, lines=lines, format=fmt)


def source_records(
    source: Source, *, columns: frozenset[str], required: tuple[str, ...], progress: Callable[[int], object]
) -> Iterator[tuple[int, dict[str, Any] | str]]:
    """(line number, dict or the reason it is not one) per record; blank lines are not records.

    `columns` and `required` are the CSV header's allowed and required names; `progress(n)`
    is called as lines are read.
    """
    if source.format == "jsonl":
        return _jsonl_records(source.stream, progress)
    return _csv_records(source.stream, columns, required, progress)


def _jsonl_records(stream: IO[bytes], progress: Callable[[int], object]) -> Iterator[tuple[int, dict[str, Any] | str]]:
    for line_no, raw in enumerate(stream, 1):
        progress(1)
        if line_no == 1:
            raw = raw.removeprefix(_UTF8_BOM)
        if not raw.strip():
            continue
        try:
            data = json_loads_strict(raw)
        except ValueError:  # UnicodeDecodeError and too deep documents too
            yield line_no, "invalid_json: the line is not valid UTF-8 JSON."
            continue
        if not isinstance(data, dict):
            yield line_no, "invalid_json: the line is not a JSON object."
            continue
        yield line_no, data


def _csv_records(
    stream: IO[bytes], columns: frozenset[str], required: tuple[str, ...], progress: Callable[[int], object]
) -> Iterator[tuple[int, dict[str, Any] | str]]:
    """Rows of a CSV file with a header (line 1); empty cells are absent fields, metadata is JSON text."""
    reader = csv.reader(io.TextIOWrapper(stream, encoding="utf-8-sig", newline=""))
    try:
        header = next(reader, None)
        if header is None:
            return
        progress(reader.line_num)
        names = [name.strip() for name in header]
        unknown = sorted(set(names) - columns)
        missing = [name for name in required if name not in names]
        if unknown or missing or len(set(names)) != len(names):
            problems = [
                f"unknown column(s) {', '.join(unknown)}" if unknown else "",
                f"missing column(s) {', '.join(missing)}" if missing else "",
                "repeated column names" if len(set(names)) != len(names) else "",
            ]
            raise UnusableInput(
                f"Bad CSV header: {'; '.join(p for p in problems if p)}. Columns: {', '.join(sorted(columns))}."
            )
        previous = reader.line_num
        for row in reader:
            # A quoted cell may span lines: a row is reported at the line it starts on.
            line_no, previous = previous + 1, reader.line_num
            progress(reader.line_num - line_no + 1)
            if not row:
                continue
            if len(row) != len(names):
                yield line_no, f"validation_error: expected {len(names)} columns, found {len(row)}."
                continue
            data: dict[str, Any] = {name: cell for name, cell in zip(names, row, strict=True) if cell != ""}
            if "metadata" in data:
                # Unparsable text stays text: the parser reports "metadata: Must be a JSON object."
                with contextlib.suppress(ValueError):
                    data["metadata"] = json_loads_strict(data["metadata"])
            yield line_no, data
    except UnicodeDecodeError as exc:
        raise UnusableInput(f"The file is not UTF-8 text (after line {reader.line_num}): {exc.reason}.") from None
    except csv.Error as exc:
        raise UnusableInput(f"Unreadable CSV after line {reader.line_num}: {exc}.") from None


class BackfillCommand(BaseCommand):
    """Progress bar, rejection lines, summary line and exit status of a backfill command."""

    max_batch_size: int
    audit_action: str  # an audit.models.AuditAction member
    audit_resource_type: str
    # audit.services.audit_record, set by each app's command: amani imports no app.
    audit_record: Callable[..., object]
    actor: Actor
    source: Source

    def batch_size_check(self, batch_size: int) -> None:
        if not 1 <= batch_size <= self.max_batch_size:
            raise UnusableInput(f"--batch-size must be between 1 and {self.max_batch_size}.")

    def progress_start(self, total: int | None) -> None:
        stream = getattr(self.stderr, "_out", self.stderr)
        is_terminal = bool(getattr(stream, "isatty", lambda: False)())
        self.bar = tqdm(total=total, unit="line", file=sys.stderr, disable=not is_terminal, dynamic_ncols=True)

    def report(self, message: str) -> None:
        """One rejection line on stderr, above the progress bar when there is one."""
        if self.bar.disable:
            self.stderr.write(message)
        else:
            self.bar.write(message, file=sys.stderr)

    def batch_audit(self, lines: tuple[int, int], counts: Counts, **extra: Any) -> None:
        """One audit record per committed batch: the file by name and SHA-256, its line range, the counts."""
        self.audit_record(
            action=self.audit_action,
            actor=self.actor,
            resource_type=self.audit_resource_type,
            resource_id=self.source.sha256 or "stdin",
            details={
                "file": self.source.name,
                "sha256": self.source.sha256,
                "first_line": lines[0],
                "last_line": lines[1],
                **extra,
                **counts.as_dict(),
            },
        )

    def finish(self, total: Counts, failure: str) -> None:
        """The summary line; exit status 1 with `failure` (formatted with the count) when any was refused."""
        self.stdout.write(total.line())
        if total.conflict or total.invalid:
            raise CommandError(failure.format(count=total.conflict + total.invalid), returncode=1)
