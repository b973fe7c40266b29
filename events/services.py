"""Writes of wallet events: single ingest, batch ingest, and the core the backfill shares.

Every path decides the same way (API.md, "Wallet transaction events"):

0. Take a transaction-scoped advisory lock on every dedup key the rows
   carry (hashed into KEY_LOCK_STRIPES stripes), in ascending order, before inserting.
   Two transactions can only wait on each other's uncommitted rows when they share a
   key, hence a stripe: the second then waits for the first to commit before it
   inserts anything, so inserts never deadlock (the balance buckets are upserted in
   a canonical order too). Striping bounds the locks a transaction holds (shared lock
   table) whatever the batch size; a stripe collision only serialises two writers, and
   two large batches nearly always share a stripe, so they run one after the other.
1. Insert all new rows in request order with `INSERT … ON CONFLICT DO NOTHING
   RETURNING` and no conflict target, so every unique constraint (public id,
   provider + provider_event_id, idempotency key) counts. PostgreSQL inserts the
   rows in order and skips a row that collides with a committed row, with a row of a
   concurrent transaction (after waiting for it to commit), or with an earlier row of
   the same statement. A row is therefore inserted exactly when a sequence of single
   ingests would have created it.
2. Rows not inserted are resolved by one SELECT of the events matching their keys
   (run after the insert, so it sees whatever blocked them) and decided in order:
   same content is a duplicate (replay), different content a conflict.
3. New events go into the balance buckets and the audit trail in the same transaction.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import random
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, TypeVar

import psycopg.errors
from django.db import OperationalError, connection, transaction
from rest_framework import status

from amani import metrics
from amani.api.errors import DomainError, NotFound
from audit.services import Actor, audit_record, audit_record_many
from events.balances import bucket_upsert_sql
from events.models import WalletEvent
from events.validation import EventInput, EventInvalid, event_parse, provider_check
from wallets.models import Wallet

RESOURCE_TYPE = "wallet_event"
ACTION_INGEST = "ingest_event"
MAX_BATCH_ITEMS = 1000
# The key locks (step 0) make deadlocks between event writers impossible; a deadlock
# with some other writer is still retried, a bounded number of times with jittered backoff.
DEADLOCK_ATTEMPTS = 5
DEADLOCK_BACKOFF_SECONDS = 0.02
# Lock stripes for dedup keys. At most this many advisory locks per transaction
# (PostgreSQL's shared lock table holds max_locks_per_transaction x max_connections).
KEY_LOCK_STRIPES = 256
# Advisory lock key space of these locks: (namespace << 32) | stripe, one bigint key.
_KEY_LOCK_NAMESPACE = 0x616D616E  # "aman"

CREATED = "created"
DUPLICATE = "duplicate"
CONFLICT = "conflict"
INVALID = "invalid"
STATUSES = (CREATED, DUPLICATE, CONFLICT, INVALID)

INSERT_COLUMNS = (
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
INSERTED_KEYS = "id, public_id, provider, provider_event_id, idempotency_key"
# An EventRow read back is (id, public_id, wallet_id, wallet public id) and then these, in order.
_ROW_TAIL = tuple(column for column in INSERT_COLUMNS if column not in ("public_id", "wallet_id"))


def events_insert_sql(source: str) -> str:
    """Insert the rows of `source` (a SELECT of INSERT_COLUMNS, in order) and bucket the new ones.

    One statement: `INSERT … ON CONFLICT DO NOTHING` with no conflict target (every
    unique key counts), the day-bucket upsert of exactly the rows it inserted
    (events.balances.bucket_upsert_sql over its RETURNING), and the inserted rows'
    keys (INSERTED_KEYS) as the result.
    """
    table = WalletEvent._meta.db_table
    return (
        f"WITH new_events AS (INSERT INTO {table} ({', '.join(INSERT_COLUMNS)}) {source} "  # noqa: S608 (names only)
        f"ON CONFLICT DO NOTHING RETURNING {INSERTED_KEYS}, wallet_id, currency, event_type, amount, occurred_at), "
        f"buckets AS ({bucket_upsert_sql('new_events')}) "
        f"SELECT {INSERTED_KEYS} FROM new_events"
    )


class EventConflict(DomainError):
    """An earlier event matches a dedup key but has different content: 409, naming it."""

    status_code = status.HTTP_409_CONFLICT
    code = "event_conflict"


@dataclass(slots=True)
class WalletRef:
    """What deciding an event needs of its wallet."""

    id: int
    public_id: uuid.UUID
    provider: str
    user_id: uuid.UUID

    @classmethod
    def of(cls, wallet: Wallet) -> WalletRef:
        return cls(wallet.pk, wallet.public_id, wallet.provider, wallet.user_id)


@dataclass(slots=True)
class EventRow:
    """An event as stored (or about to be). Light enough for a million-record backfill."""

    id: int | None
    public_id: uuid.UUID | None  # None until PostgreSQL generates it (backfill loads)
    wallet_id: int
    wallet_public_id: uuid.UUID
    provider: str
    event_type: str
    amount: Decimal
    currency: str
    provider_event_id: str | None
    idempotency_key: str | None
    metadata: dict[str, Any]
    occurred_at: dt.datetime
    created_at: dt.datetime

    @property
    def keys(self) -> tuple[uuid.UUID | None, str, str | None, str | None]:
        return (self.public_id, self.provider, self.provider_event_id, self.idempotency_key)

    def same_content(self, other: EventRow) -> bool:
        """The contract's content: metadata and the dedup keys themselves are not part of it."""
        return (
            self.wallet_id == other.wallet_id
            and self.event_type == other.event_type
            and self.amount == other.amount  # numeric value: 1500.0 == 1500.00
            and self.currency == other.currency
            and self.occurred_at == other.occurred_at  # the instant, whatever the offset
            and self.provider_event_id == other.provider_event_id
        )

    def as_model(self) -> WalletEvent:
        event = WalletEvent(
            id=self.id,
            public_id=self.public_id,
            wallet_id=self.wallet_id,
            provider=self.provider,
            event_type=self.event_type,
            amount=self.amount,
            currency=self.currency,
            provider_event_id=self.provider_event_id,
            idempotency_key=self.idempotency_key,
            metadata=self.metadata,
            occurred_at=self.occurred_at,
            created_at=self.created_at,
        )
        event.wallet_public_id = self.wallet_public_id
        return event


@dataclass(slots=True)
class Decision:
    """How one record was decided. `event` is the new or earlier event (the existing one on conflict)."""

    status: str
    event: EventRow | None = None
    error: DomainError | None = None


@dataclass(frozen=True)
class Ingestion:
    event: WalletEvent
    created: bool


@dataclass(frozen=True)
class BatchResult:
    index: int
    status: str
    event: EventRow | None
    error: DomainError | None


def event_row_build(item: EventInput, wallet: WalletRef, *, now: dt.datetime, generate_id: bool = True) -> EventRow:
    """The row a parsed record would insert; the public id is the client's event_id or a new one.

    With `generate_id=False` a row without event_id keeps public_id None for the
    database to fill in (gen_random_uuid() in the backfill's INSERT … SELECT).
    """
    return EventRow(
        id=None,
        public_id=item.event_id or (uuid.uuid4() if generate_id else None),
        wallet_id=wallet.id,
        wallet_public_id=wallet.public_id,
        provider=wallet.provider,
        event_type=item.event_type,
        amount=item.amount,
        currency=item.currency,
        provider_event_id=item.provider_event_id,
        idempotency_key=item.idempotency_key,
        metadata=item.metadata,
        occurred_at=item.occurred_at,
        created_at=now,
    )


T = TypeVar("T")
InsertedKey = tuple[int, uuid.UUID, str, str | None, str | None]


# PostgreSQL array types of INSERT_COLUMNS, in order.
_ARRAY_TYPES = (
    "uuid",
    "bigint",
    "text",
    "text",
    "numeric",
    "text",
    "text",
    "text",
    "jsonb",
    "timestamptz",
    "timestamptz",
)


def _row_values(row: EventRow) -> tuple[object, ...]:
    return (
        row.public_id,
        row.wallet_id,
        row.provider,
        row.event_type,
        row.amount,
        row.currency,
        row.provider_event_id,
        row.idempotency_key,
        row.metadata,
        row.occurred_at,
        row.created_at,
    )


def _insert_values(rows: Sequence[EventRow]) -> list[InsertedKey]:
    """Insert all rows in order with ON CONFLICT DO NOTHING, bucket the new ones; their keys.

    One statement (events_insert_sql), the rows travelling as one array
    per column (unnest … WITH ORDINALITY, ORDER BY the ordinal): 11 parameters whatever
    the batch size, instead of a VALUES list of 11,000 placeholders that costs more to
    build and parse than to insert.
    """
    columns = ", ".join(INSERT_COLUMNS)
    arrays: list[list[object]] = [[] for _ in INSERT_COLUMNS]
    for row in rows:
        for array, value in zip(arrays, _row_values(row), strict=True):
            array.append(value)
    arrays[8] = [json.dumps(metadata) for metadata in arrays[8]]
    casts = ", ".join(f"%s::{kind}[]" for kind in _ARRAY_TYPES)
    source = f"SELECT {columns} FROM unnest({casts}) WITH ORDINALITY AS u({columns}, ord) ORDER BY ord"  # noqa: S608
    with connection.cursor() as cursor:
        cursor.execute(events_insert_sql(source), arrays)
        return cursor.fetchall()


def _key_stripe(kind: bytes, value: bytes) -> int:
    digest = hashlib.blake2b(kind + b"\x00" + value, digest_size=8).digest()
    return int.from_bytes(digest, "big") % KEY_LOCK_STRIPES


DedupKeys = tuple[uuid.UUID | None, str | None, str | None]


def key_lock_ids(keys: Iterable[DedupKeys]) -> list[int]:
    """The advisory lock keys covering (public id, provider event id, idempotency key) triples, ascending.

    A provider event id is unique per provider, but its stripe is taken from the id
    alone: equal keys still share a stripe, and the stripes of a record are known
    before its wallet (hence its provider) is.
    """
    stripes: set[int] = set()
    for public_id, provider_event_id, idempotency_key in keys:
        if public_id is not None:
            stripes.add(_key_stripe(b"id", public_id.bytes))
        if provider_event_id is not None:
            stripes.add(_key_stripe(b"pe", provider_event_id.encode()))
        if idempotency_key is not None:
            stripes.add(_key_stripe(b"ik", idempotency_key.encode()))
    return [(_KEY_LOCK_NAMESPACE << 32) | stripe for stripe in sorted(stripes)]


def key_locks_take(lock_ids: list[int]) -> None:
    """Take these key locks (key_lock_ids) in ascending order, till the transaction ends.

    Only when the store is its own transaction (run_with_deadlock_retry's atomic block is
    the outermost): inside a caller's longer transaction (the backfill's --dry-run keeps
    one for the whole file) the locks would be held, and other writers blocked, until
    that ends; there a deadlock stays possible and is retried.

    unnest() yields the array in order and the function runs once per row as it is
    produced, so the locks are taken in ascending order in one round trip.
    """
    if len(connection.atomic_blocks) > 1:
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(pg_advisory_xact_lock(k)) FROM unnest(%s::bigint[]) AS u(k)", [lock_ids])


def _earlier_events(rows: Sequence[EventRow], *, exclude_ids: set[int]) -> list[EventRow]:
    """One SELECT of the stored events sharing a dedup key with any of `rows`.

    Each branch of the OR is served by its unique index (provider event ids are grouped
    by provider, so the pair index is used, and providers per batch are few). Written
    by hand: on a replay this query is the request's largest cost, and
    compiling the ORM version (an OR of IN lists and a join) took more CPU than running
    it (docs/benchmarks.md).
    """
    conditions = ["e.public_id = ANY(%s::uuid[])"]
    params: list[object] = [[row.public_id for row in rows if row.public_id is not None]]
    keys = [row.idempotency_key for row in rows if row.idempotency_key is not None]
    if keys:
        conditions.append("e.idempotency_key = ANY(%s::varchar[])")
        params.append(keys)
    by_provider: dict[str, list[str]] = defaultdict(list)
    for row in rows:
        if row.provider_event_id is not None:
            by_provider[row.provider].append(row.provider_event_id)
    for provider, provider_event_ids in sorted(by_provider.items()):
        conditions.append("(e.provider = %s AND e.provider_event_id = ANY(%s::varchar[]))")
        params += [provider, provider_event_ids]
    sql = (
        f"SELECT e.id, e.public_id, e.wallet_id, w.public_id, {', '.join(f'e.{c}' for c in _ROW_TAIL)} "  # noqa: S608
        f"FROM {WalletEvent._meta.db_table} e JOIN {Wallet._meta.db_table} w ON w.id = e.wallet_id "
        f"WHERE {' OR '.join(conditions)}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        found = cursor.fetchall()
    metadata = WalletEvent._meta.get_field("metadata")
    at = 4 + _ROW_TAIL.index("metadata")  # Django has psycopg load jsonb as text; the field decodes it
    return [
        EventRow(*values[:at], metadata.from_db_value(values[at], None, connection), *values[at + 1 :])
        for values in found
        if values[0] not in exclude_ids
    ]


def event_rows_decide(rows: Sequence[EventRow], inserted: Iterable[InsertedKey] | None) -> list[Decision]:
    """Decide every row, in order, from what the insert did and what was there before.

    `inserted` holds (INSERTED_KEYS) of the rows the insert wrote, or is None when it
    wrote every row. Run after the insert, in its transaction.
    """
    if inserted is None or len(inserted := list(inserted)) == len(rows):  # every row was inserted
        return [Decision(CREATED, row) for row in rows]
    # Which row produced each inserted event. Rows with identical keys: only the first can
    # have been inserted. Rows loaded without a public id (the backfill lets PostgreSQL
    # generate it) are matched on their other keys once the client-given ids are claimed.
    produced = {(public_id, provider, pe_id, key): (pk, public_id) for pk, public_id, provider, pe_id, key in inserted}
    inserted_ids = {pk for pk, _ in produced.values()}
    new = [False] * len(rows)
    for position, row in enumerate(rows):
        if row.public_id is not None and (found := produced.pop(row.keys, None)) is not None:
            row.id, new[position] = found[0], True
    generated = {(provider, pe_id, key): found for (_, provider, pe_id, key), found in produced.items()}
    for position, row in enumerate(rows):
        if row.public_id is None and (found := generated.pop(row.keys[1:], None)) is not None:
            (row.id, row.public_id), new[position] = found, True
    if generated:
        raise RuntimeError("an inserted event could not be matched to its record")
    pending = [row for row, is_new in zip(rows, new, strict=True) if not is_new]
    if not pending:
        return [Decision(CREATED, row) for row in rows]

    by_public_id: dict[uuid.UUID, EventRow] = {}
    by_provider_event: dict[tuple[str, str], EventRow] = {}
    by_key: dict[str, EventRow] = {}

    def remember(event: EventRow) -> None:
        if event.public_id is not None:
            by_public_id[event.public_id] = event
        if event.provider_event_id is not None:
            by_provider_event[(event.provider, event.provider_event_id)] = event
        if event.idempotency_key is not None:
            by_key[event.idempotency_key] = event

    for event in _earlier_events(pending, exclude_ids=inserted_ids):
        remember(event)

    decisions: list[Decision] = []
    for row, is_new in zip(rows, new, strict=True):
        if is_new:
            remember(row)
            decisions.append(Decision(CREATED, row))
            continue
        matches: list[EventRow] = []
        for match in (
            by_public_id.get(row.public_id) if row.public_id is not None else None,
            by_provider_event.get((row.provider, row.provider_event_id)) if row.provider_event_id else None,
            by_key.get(row.idempotency_key) if row.idempotency_key else None,
        ):
            if match is not None and all(match is not seen for seen in matches):
                matches.append(match)
        if not matches:
            raise RuntimeError("an event was not inserted but no earlier event matches it")
        earlier = matches[0]
        if len(matches) == 1 and earlier.same_content(row):
            decisions.append(Decision(DUPLICATE, earlier))
        else:
            decisions.append(Decision(CONFLICT, earlier, _conflict(earlier, several=len(matches) > 1)))
    return decisions


def _conflict(earlier: EventRow, *, several: bool) -> EventConflict:
    reason = (
        "Its deduplication keys match more than one earlier event."
        if several
        else "An earlier event has the same deduplication key but different content."
    )
    return EventConflict(reason, existing_event_id=str(earlier.public_id))


def event_rows_store(*, rows: Sequence[EventRow]) -> list[Decision]:
    """Insert, decide and bucket `rows` (in order) in the caller's transaction."""
    if not rows:
        return []
    for row in rows:  # a deadlock retry runs this again: forget what the aborted attempt assigned
        row.id = None
    key_locks_take(key_lock_ids((row.public_id, row.provider_event_id, row.idempotency_key) for row in rows))
    return event_rows_decide(rows, _insert_values(rows))


def run_with_deadlock_retry(operation: Callable[[], T]) -> T:
    """Run `operation` in a transaction (savepoint), again if PostgreSQL broke a deadlock by aborting it."""
    for attempt in range(1, DEADLOCK_ATTEMPTS + 1):
        try:
            with transaction.atomic():
                return operation()
        except OperationalError as exc:
            if attempt == DEADLOCK_ATTEMPTS or not isinstance(exc.__cause__, psycopg.errors.DeadlockDetected):
                raise
            metrics.event_race_retry_observe()
            time.sleep(random.uniform(0, DEADLOCK_BACKOFF_SECONDS * 2**attempt))
    raise AssertionError("unreachable")


def _audit_fields(row: EventRow, user_id: uuid.UUID) -> dict[str, Any]:
    return {
        "action": ACTION_INGEST,
        "resource_type": RESOURCE_TYPE,
        "resource_id": str(row.public_id),
        "user_id": user_id,
        "details": {
            "wallet_id": str(row.wallet_public_id),
            "event_type": row.event_type,
            "amount": str(row.amount),
            "currency": row.currency,
            "provider_event_id": row.provider_event_id,
            "idempotency_key": row.idempotency_key,
            "occurred_at": row.occurred_at.isoformat(),
        },
    }


def event_ingest(*, wallet: Wallet, item: EventInput, actor: Actor) -> Ingestion:
    """Record one event, idempotently.

    Returns the new event (created=True) or the earlier identical one (a replay);
    raises EventConflict when an earlier event shares a dedup key but not the content,
    EventInvalid for a provider other than the wallet's, DedupKeyRequired without any
    dedup key. `item` is parsed (events.validation.event_parse, or built by the caller).
    """
    item.dedup_key_require()
    provider_check(item, wallet.provider)
    row = event_row_build(item, WalletRef.of(wallet), now=dt.datetime.now(dt.UTC))

    def store() -> Decision:
        (decision,) = event_rows_store(rows=[row])
        if decision.status == CREATED:
            audit_record(actor=actor, **_audit_fields(row, wallet.user_id))
        return decision

    decision = run_with_deadlock_retry(store)
    if decision.status == CONFLICT:
        raise decision.error
    return Ingestion(event=decision.event.as_model(), created=decision.status == CREATED)


def event_ingest_batch(*, items: object, actor: Actor) -> list[BatchResult]:
    """Decide up to 1,000 batch items in order, each as a single ingest would, in one transaction.

    Round trips: one wallet lookup, one key-lock SELECT, one INSERT with the bucket upsert, one SELECT
    when some item was not new, one audit insert. A bad item is an `invalid` result;
    it never stops the others.
    """
    if not isinstance(items, list) or not 1 <= len(items) <= MAX_BATCH_ITEMS:
        raise EventInvalid({"events": [f"Must be a list of 1 to {MAX_BATCH_ITEMS} events."]})
    now = dt.datetime.now(dt.UTC)
    results: list[BatchResult | None] = [None] * len(items)
    parsed: list[tuple[int, EventInput]] = []
    for index, data in enumerate(items):
        if not isinstance(data, dict):
            error = EventInvalid({"non_field_errors": ["Each event must be a JSON object."]})
            results[index] = BatchResult(index, INVALID, None, error)
            continue
        try:
            parsed.append((index, event_parse(data, with_wallet=True, now=now)))
        except DomainError as exc:
            results[index] = BatchResult(index, INVALID, None, exc)

    wallets = wallet_refs_get(public_ids={item.wallet_id for _, item in parsed})
    rows: list[EventRow] = []
    row_indexes: list[int] = []
    for index, item in parsed:
        wallet = wallets.get(item.wallet_id)
        try:
            if wallet is None:
                raise NotFound("No wallet has this wallet_id.")
            provider_check(item, wallet.provider)
        except DomainError as exc:
            results[index] = BatchResult(index, INVALID, None, exc)
            continue
        rows.append(event_row_build(item, wallet, now=now))
        row_indexes.append(index)

    def store() -> list[Decision]:
        decisions = event_rows_store(rows=rows)
        new = [(d.event, wallets[d.event.wallet_public_id].user_id) for d in decisions if d.status == CREATED]
        if new:
            audit_record_many(records=[_audit_fields(event, user_id) for event, user_id in new], actor=actor)
        return decisions

    for index, decision in zip(row_indexes, run_with_deadlock_retry(store) if rows else [], strict=True):
        # The representation reads the row itself: no model instance per item (docs/benchmarks.md).
        event = decision.event if decision.status != CONFLICT else None
        results[index] = BatchResult(index, decision.status, event, decision.error)
    return results


def wallet_refs_get(*, public_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, WalletRef]:
    """The wallets with these public ids, in one query."""
    ids = list(public_ids)
    if not ids:
        return {}
    found = Wallet.objects.filter(public_id__in=ids).values_list("id", "public_id", "provider", "user_id")
    return {public_id: WalletRef(pk, public_id, provider, user_id) for pk, public_id, provider, user_id in found}
