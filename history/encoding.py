"""The canonical encoding of sealed records and block headers (docs/runbooks/history.md).

A record's encoding is its line in PostgreSQL's COPY text format: the kind, then every
stored column in the order below, each as PostgreSQL's own text output under the session
settings of SESSION_SETTINGS, separated by tabs, NULL as \\N, ending in a newline. COPY
escapes backslash, tab, newline and carriage return, so a line is unambiguous and an
auditor can produce the same bytes with psql's COPY.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

ENCODING_VERSION = "amani-history/1"


@dataclass(frozen=True)
class Kind:
    """A table whose every record is sealed."""

    name: str
    table: str
    columns: tuple[str, ...]


EVENT = Kind(
    "event",
    "events_walletevent",
    (
        "id",
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
        "xact_id",
    ),
)
AUDIT = Kind(
    "audit",
    "audit_auditrecord",
    (
        "id",
        "action",
        "actor_type",
        "actor_id",
        "user_id",
        "resource_type",
        "resource_id",
        "details",
        "request_id",
        "created_at",
        "xact_id",
    ),
)
# Block order: a block's events (by id), then its audit records (by id).
KINDS = (EVENT, AUDIT)

# Text output depends on these (timestamps on TimeZone and DateStyle).
SESSION_SETTINGS = (
    ("TimeZone", "UTC"),
    ("DateStyle", "ISO, YMD"),
    ("IntervalStyle", "postgres"),
    ("client_encoding", "UTF8"),
    ("extra_float_digits", "1"),
)


def session_sql() -> str:
    """The SET LOCAL statements (for the current transaction) that fix every column's text output."""
    return "; ".join(f"SET LOCAL {name} = '{value}'" for name, value in SESSION_SETTINGS)


def records_copy_sql(kind: Kind, *, where: str, bucket: str | None = None) -> str:
    """COPY of `kind`'s records matching `where`, in id order, each line the record's encoding.

    With `bucket` (an SQL expression), each line starts with its value and a tab, and lines
    are ordered by it first: verification reads every block's records in one stream.
    """
    select = ", ".join((f"'{kind.name}'", *kind.columns))
    order = "id"
    if bucket is not None:
        select, order = f"{bucket}, {select}", "1, id"
    return f"COPY (SELECT {select} FROM {kind.table} WHERE {where} ORDER BY {order}) TO STDOUT"  # noqa: S608


def header(*, number: int, previous_hash: str, sealed_at: str, xact_from: int, xact_to: int, xact_next: int) -> bytes:
    """The first line hashed into a block: what the block is, where it sits in the chain, what it covers."""
    fields = (ENCODING_VERSION, str(number), previous_hash, sealed_at, str(xact_from), str(xact_to), str(xact_next))
    return ("\t".join(fields) + "\n").encode()


def record_digest(line: bytes) -> bytes:
    """SHA-256 of one record's encoding (its COPY line, newline included)."""
    return hashlib.sha256(line).digest()


def record_key(line: bytes) -> tuple[int, str | None]:
    """(id, public id) of a record from its encoding: the second and, for events, the third field."""
    kind, record_id, rest = line.split(b"\t", 2)
    public_id = rest[: rest.index(b"\t")].decode() if kind == b"event" else None
    return int(record_id), public_id


def record_xact(line: bytes) -> int:
    """The writing transaction's id: the last field of every kind."""
    return int(line[line.rindex(b"\t") + 1 :])
