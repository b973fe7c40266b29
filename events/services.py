"""Writes of wallet events: single ingest, batch ingest, and the decisions the backfill shares.

The rules (API.md, "Wallet transaction events"); the SQL is in events.queries:

1. A record is stored with `INSERT … ON CONFLICT DO NOTHING` and no conflict target,
   so every unique constraint (public id, provider + provider_event_id, idempotency
   key) counts: it is inserted exactly when a sequence of single ingests would have
   created it, whatever races it. The unique constraints are the only guard; there
   are no locks of this code's own.
2. A record not inserted is decided against the events holding its keys (event_decide):
   the same content is a duplicate (a replay), different content a conflict.
3. New events go into the balance buckets and the audit trail in the same statement.

Every write of events runs the same store step: rows → insert → decide → audit, run
again after a deadlock (events_store, with run_with_deadlock_retry). Its audit is per
batch: one record naming the events, written by the insert statement itself (the batch
endpoint), or one record with the counts, written once the rows are decided (the
backfill, EventBackfill.store). A single ingest is the step's one-row case with the
audit per event, all in one autocommit statement (events.queries.event_insert_one): the
same rule for deciding (event_decide), the same retry, no statement more. A batch is one
autocommit statement too, plus one SELECT when some item was not new; it
inserts its rows in a canonical order (batch_insert_order), so two batches carrying the
same events wait on each other's rows in the same order and cannot deadlock, and
batches with disjoint keys never wait on each other's rows at all (they may wait on a
shared balance bucket, locked in (wallet, currency, day) order after every insert, until
the other commits). Only two concurrent writers carrying *conflicting* records (sharing
some dedup keys but not all) in crossing orders can still deadlock: PostgreSQL breaks
it and the loser is run again (run_with_deadlock_retry).

Each service counts its own outcomes (amani.metrics), so the API, the webhooks, the
admin and the backfill count alike.
"""

from __future__ import annotations

import datetime as dt
import random
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, TypeVar

import psycopg.errors
from django.db import OperationalError, connection, transaction

from amani import metrics
from amani.actors import Actor
from amani.errors import DomainError, NotFound
from audit.models import AuditAction, AuditResource
from events import queries
from events.queries import InsertedKey
from events.validation import EventInput, EventInvalid, event_parse, provider_check
from wallets.selectors import WalletRef, wallet_refs_get

# One audit record per batch names every event it created (details.event_ids).
MAX_BATCH_ITEMS = 1000
# A deadlock (only between writers of conflicting records, see above) is retried, a bounded
# number of times with jittered backoff.
DEADLOCK_ATTEMPTS = 5
DEADLOCK_BACKOFF_SECONDS = 0.02
# The wallets a backfill remembers across its chunks, at most.
WALLET_CACHE_SIZE = 100_000
# A single ingest that inserted nothing yet finds no event holding its keys, even read
# again after its statement (only possible if that event vanished), is run again, boundedly.
INGEST_ATTEMPTS = 3

CREATED = "created"
DUPLICATE = "duplicate"
CONFLICT = "conflict"
INVALID = "invalid"
STATUSES = (CREATED, DUPLICATE, CONFLICT, INVALID)


class EventConflict(DomainError):
    """An earlier event matches a dedup key but has different content: 409, naming it."""

    code = "event_conflict"


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


@dataclass(slots=True)
class Decision:
    """How one record was decided. `event` is the new or earlier event (the existing one on conflict)."""

    status: str
    event: EventRow | None = None
    error: DomainError | None = None


@dataclass(frozen=True)
class Ingestion:
    """What a single ingest did: `event` is the new event, or the earlier one it replays."""

    event: EventRow
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


class _EventsByKey:
    """Events found by each dedup key; a later remember() of the same key wins."""

    def __init__(self, events: Iterable[EventRow] = ()) -> None:
        self.by_public_id: dict[uuid.UUID, EventRow] = {}
        self.by_provider_event: dict[tuple[str, str], EventRow] = {}
        self.by_key: dict[str, EventRow] = {}
        for event in events:
            self.remember(event)

    def remember(self, event: EventRow) -> None:
        if event.public_id is not None:
            self.by_public_id[event.public_id] = event
        if event.provider_event_id is not None:
            self.by_provider_event[(event.provider, event.provider_event_id)] = event
        if event.idempotency_key is not None:
            self.by_key[event.idempotency_key] = event

    def matching(self, row: EventRow) -> list[EventRow]:
        """The distinct events sharing a key with `row`: by public id, then provider event id, then key."""
        matches: list[EventRow] = []
        for match in (
            self.by_public_id.get(row.public_id) if row.public_id is not None else None,
            self.by_provider_event.get((row.provider, row.provider_event_id)) if row.provider_event_id else None,
            self.by_key.get(row.idempotency_key) if row.idempotency_key else None,
        ):
            if match is not None and all(match is not seen for seen in matches):
                matches.append(match)
        return matches


def event_decide(row: EventRow, matches: Sequence[EventRow]) -> Decision:
    """The rule for a record that was not inserted, given the earlier events sharing its keys.

    One earlier event with the same content: a duplicate (replay). Different content, or
    keys matching several earlier events: a conflict naming the first of them.
    """
    earlier = matches[0]
    if len(matches) == 1 and earlier.same_content(row):
        return Decision(DUPLICATE, earlier)
    reason = (
        "Its deduplication keys match more than one earlier event."
        if len(matches) > 1
        else "An earlier event has the same deduplication key but different content."
    )
    return Decision(CONFLICT, earlier, EventConflict(reason, existing_event_id=str(earlier.public_id)))


def event_rows_decide(rows: Sequence[EventRow], inserted: Iterable[InsertedKey] | None) -> list[Decision]:
    """Decide every row, in order, from what the insert did and what was there before.

    `inserted` holds (events.queries.INSERTED_KEYS) of the rows the insert wrote, or is
    None when it wrote every row. Run after the insert (in its transaction, or after
    its commit).
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

    known = _EventsByKey(queries.events_matching(pending, exclude_ids=inserted_ids))
    decisions: list[Decision] = []
    for row, is_new in zip(rows, new, strict=True):
        if is_new:
            known.remember(row)
            decisions.append(Decision(CREATED, row))
            continue
        matches = known.matching(row)
        if not matches:
            raise RuntimeError("an event was not inserted but no earlier event matches it")
        decisions.append(event_decide(row, matches))
    return decisions


def batch_insert_order(rows: Sequence[EventRow]) -> list[int]:
    """Positions of `rows` in the order a batch inserts them: canonical across batches.

    Rows sharing a dedup key (directly or through others) form a group and keep their
    request order inside it: which of them is inserted, and so every decision, depends
    only on that order. Groups are sorted by the smallest client-given keys of their
    rows, so two batches carrying the same events in any order insert them in the same
    order, and wait on each other (if at all) without a cycle. Server-generated public
    ids are random per request, so they do not take part in the order.
    """
    group_of_key: dict[tuple[str, object], int] = {}
    parent = list(range(len(rows)))

    def root(position: int) -> int:
        while parent[position] != position:
            parent[position] = parent[parent[position]]
            position = parent[position]
        return position

    sort_keys: list[tuple[str, str, str]] = []
    for position, row in enumerate(rows):
        keys = [("pe", (row.provider, row.provider_event_id)) if row.provider_event_id is not None else None]
        keys += [("ik", row.idempotency_key) if row.idempotency_key is not None else None]
        keys += [("id", row.public_id) if row.public_id is not None else None]
        for key in keys:
            if key is None:
                continue
            if (other := group_of_key.setdefault(key, position)) != position:
                parent[root(position)] = root(other)
        sort_keys.append(
            (
                f"{row.provider}:{row.provider_event_id}" if row.provider_event_id is not None else "",
                row.idempotency_key or "",
                str(row.public_id) if row.public_id is not None else "",
            )
        )
    smallest: dict[int, tuple[str, str, str]] = {}
    for position, sort_key in enumerate(sort_keys):
        group = root(position)
        if group not in smallest or sort_key < smallest[group]:
            smallest[group] = sort_key
    return sorted(range(len(rows)), key=lambda position: (smallest[root(position)], position))


def run_with_deadlock_retry(operation: Callable[[], T], *, atomic: bool = True) -> T:
    """Run `operation` (in a transaction or savepoint when `atomic`), again if PostgreSQL broke a deadlock.

    With `atomic=False` the operation is one autocommit statement (or starts with one):
    a deadlock aborts that statement alone, and nothing of it was written.
    """
    for attempt in range(1, DEADLOCK_ATTEMPTS + 1):
        try:
            if not atomic:
                return operation()
            with transaction.atomic():
                return operation()
        except OperationalError as exc:
            retry = (atomic or not connection.in_atomic_block) and attempt < DEADLOCK_ATTEMPTS
            if not retry or not isinstance(exc.__cause__, psycopg.errors.DeadlockDetected):
                raise
            metrics.event_race_retry_observe()
            time.sleep(random.uniform(0, DEADLOCK_BACKOFF_SECONDS * 2**attempt))
    raise AssertionError("unreachable")


def _audit_details(row: EventRow) -> dict[str, Any]:
    return {
        "wallet_id": str(row.wallet_public_id),
        "event_type": row.event_type,
        "amount": str(row.amount),
        "currency": row.currency,
        "provider_event_id": row.provider_event_id,
        "idempotency_key": row.idempotency_key,
        "occurred_at": row.occurred_at.isoformat(),
    }


@dataclass(frozen=True)
class Stored:
    """What the store step decided for `count` rows: the decisions in row order, or None when
    every row was new (then the rows need not even be built: a backfill's usual chunk)."""

    count: int
    decisions: list[Decision] | None

    def summary(self) -> dict[str, int]:
        """Rows by status: created, duplicate, conflict."""
        summary = dict.fromkeys((CREATED, DUPLICATE, CONFLICT), 0)
        if self.decisions is None:
            summary[CREATED] = self.count
        else:
            for decision in self.decisions:
                summary[decision.status] += 1
        return summary


def events_store(
    *,
    count: int,
    rows: Callable[[], Sequence[EventRow]],
    insert: Callable[[], Iterable[InsertedKey] | None],
    audit: Callable[[Stored], None] | None,
    atomic: bool,
) -> Stored:
    """The store step of a batch of events: insert, decide, audit, all again after a deadlock.

    `insert` runs the one statement inserting the rows (with their buckets) and returns
    the keys it inserted, or None when it inserted every row; `rows()` gives the `count`
    rows in their original order, asked for only when some row needs deciding
    (event_rows_decide). The audit is per batch: written by the insert statement itself
    (`audit` None), or by `audit` once the rows are decided, in the same transaction.
    With `atomic`, all of it is one transaction; otherwise `insert` is one autocommit
    statement, and deciding reads after it.
    """

    def attempt() -> Stored:
        inserted = insert()
        stored = Stored(count, None if inserted is None else event_rows_decide(rows(), inserted))
        if audit is not None:
            audit(stored)
        return stored

    return run_with_deadlock_retry(attempt, atomic=atomic)


def event_ingest_parse(data: dict[str, Any], *, idempotency_key: object = None) -> EventInput:
    """A single ingest's record parsed (events.validation.event_parse); a refused one counts as an invalid ingestion."""
    try:
        return event_parse(data, idempotency_key=idempotency_key)
    except DomainError:
        metrics.event_ingestion_observe(outcome="invalid")
        raise


@metrics.outcome_counted(
    metrics.event_ingestion_observe,
    result=lambda ingestion: "created" if ingestion.created else "replayed",
    refusals={EventConflict: "conflict", DomainError: "invalid"},
)
def event_ingest(*, wallet_id: uuid.UUID, item: EventInput, actor: Actor) -> Ingestion:
    """Record one event on the wallet with this public id, idempotently, with its audit record.

    Returns the new event (created=True) or the earlier identical one (a replay);
    raises NotFound for an unknown wallet, EventConflict when an earlier event shares a
    dedup key but not the content, EventInvalid for a provider other than the wallet's,
    DedupKeyRequired without any dedup key. `item` is parsed (event_ingest_parse,
    or built by the caller). Every call counts one ingestion outcome (amani.metrics).

    The store step's one-row case, audited per event: finding the wallet, the insert, its
    bucket, its audit record and, when it was not inserted, the earlier events holding its
    keys are one statement in the usual case (events.queries.event_insert_one).
    """
    item.dedup_key_require()
    # The wallet's pk and provider are filled in from the statement, which finds the wallet itself.
    unplaced = WalletRef(id=0, public_id=wallet_id, provider="", user_id=wallet_id)
    row = event_row_build(item, unplaced, now=dt.datetime.now(dt.UTC))
    details = _audit_details(row)
    for _ in range(INGEST_ATTEMPTS):
        found = run_with_deadlock_retry(
            lambda: queries.event_insert_one(
                row=row,
                provider_sent=item.provider,
                actor=actor,
                action=AuditAction.INGEST_EVENT,
                resource_type=AuditResource.WALLET_EVENT,
                details=details,
            ),
            atomic=False,
        )
        if found is None:
            raise NotFound("No wallet has this id.")
        row.wallet_id, row.provider, row.id, earlier = found
        provider_check(item, row.provider)
        if row.id is not None:
            return Ingestion(event=row, created=True)
        matches = _EventsByKey(earlier).matching(row)
        if not matches:  # blocked by a request that committed after this statement began
            matches = _EventsByKey(queries.events_matching([row], exclude_ids=set())).matching(row)
        if matches:
            decision = event_decide(row, matches)
            if decision.status == CONFLICT:
                raise decision.error
            return Ingestion(event=decision.event, created=False)
    raise RuntimeError("an event was not inserted but no earlier event matches it")


def event_ingest_batch(*, items: object, actor: Actor) -> list[BatchResult]:
    """Decide up to 1,000 batch items in order, each as a single ingest would; count them by status.

    Round trips: one wallet lookup, one statement inserting the new events with their
    buckets and one audit record naming them all, one SELECT when some item was not new.
    A bad item is an `invalid` result; it never stops the others.
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

    summary = {INVALID: len(items) - len(rows)}
    if rows:
        ordered = [rows[position] for position in batch_insert_order(rows)]
        batch_id = uuid.uuid4()
        stored = events_store(
            count=len(rows),
            rows=lambda: rows,
            insert=lambda: queries.events_insert_audited(
                rows=ordered,
                actor=actor,
                action=AuditAction.INGEST_EVENTS_BATCH,
                resource_type=AuditResource.WALLET_EVENT_BATCH,
                batch_id=batch_id,
            ),
            audit=None,  # in the insert statement: one record naming every event created
            atomic=False,
        )
        summary.update(stored.summary())
        for index, decision in zip(row_indexes, stored.decisions, strict=True):
            # The representation reads the row itself: no model instance per item (docs/benchmarks.md).
            event = decision.event if decision.status != CONFLICT else None
            results[index] = BatchResult(index, decision.status, event, decision.error)
    metrics.event_batch_observe(summary=summary)
    return results


@dataclass
class EventLoad:
    """One chunk of backfill records, prepared without the database (a reader thread may build it).

    `items[i]` was read at `lines[i]` and is staged as `staged[i]` (COPY text,
    events.queries.staging_line); `by_wallet` maps each (wallet_id, provider as sent) to the
    positions carrying it, so wallets are checked once per chunk, not once per record.
    """

    lines: list[int] = field(default_factory=list)
    items: list[EventInput] = field(default_factory=list)
    staged: list[str] = field(default_factory=list)
    by_wallet: dict[tuple[uuid.UUID, str | None], list[int]] = field(default_factory=dict)

    def add(self, line_no: int, item: EventInput) -> None:
        """Add a parsed record (event_parse with_wallet) read at `line_no`."""
        self.by_wallet.setdefault((item.wallet_id, item.provider), []).append(len(self.items))
        self.lines.append(line_no)
        self.items.append(item)
        self.staged.append(queries.staging_line(line_no, item))


@dataclass(frozen=True)
class LoadResult:
    """A stored chunk: its records by status, and the refused ones as (line, status, error) in no order."""

    summary: dict[str, int]
    refused: list[tuple[int, str, DomainError]]


class EventBackfill:
    """Stores a backfill's chunks, each decided record by record as the batch endpoint decides an item.

    Created inside the caller's transaction if any (a dry run), once per run: it makes
    the session's staging table and remembers up to WALLET_CACHE_SIZE wallets across chunks.
    """

    def __init__(self) -> None:
        self.wallets: dict[uuid.UUID, WalletRef | None] = {}
        queries.staging_create()

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

    def _wallet_refusals(self, load: EventLoad) -> dict[int, DomainError]:
        """Errors by position for the records whose wallet is unknown or has another provider."""
        self._wallets_for({wallet_id for wallet_id, _ in load.by_wallet})
        refusals: dict[int, DomainError] = {}
        for (wallet_id, _), positions in load.by_wallet.items():
            wallet = self.wallets.get(wallet_id)
            try:
                if wallet is None:
                    raise NotFound(f"No wallet has the wallet_id {wallet_id}.")
                provider_check(load.items[positions[0]], wallet.provider)
            except DomainError as exc:
                refusals.update(dict.fromkeys(positions, exc))
        return refusals

    def store(self, load: EventLoad, *, invalid: int, audit: Callable[[dict[str, int]], None]) -> LoadResult:
        """Store one chunk in one transaction (events_store): COPY into the staging table, insert, decide, audit.

        `invalid` counts the chunk's records refused before (unparsable); `audit(summary)`
        writes the chunk's one audit record from its counts by status, in its transaction.
        The records are counted in metrics once the chunk is stored.
        """
        wallet_refused = self._wallet_refusals(load)
        keep = [position for position in range(len(load.items)) if position not in wallet_refused]
        # Inside the caller's transaction (a dry run) nothing commits: ON COMMIT never empties the table.
        empty_after = connection.in_atomic_block
        refused = [(load.lines[position], INVALID, error) for position, error in wallet_refused.items()]
        summary = {INVALID: invalid + len(wallet_refused), CREATED: 0, DUPLICATE: 0, CONFLICT: 0}

        def rows() -> list[EventRow]:
            now = dt.datetime.now(dt.UTC)
            items = [load.items[position] for position in keep]
            return [event_row_build(item, self.wallets[item.wallet_id], now=now, generate_id=False) for item in items]

        def audited(stored: Stored) -> None:
            audit({**summary, **stored.summary()})

        if keep:
            stored = events_store(
                count=len(keep),
                rows=rows,
                insert=lambda: queries.events_insert_staged(
                    [load.staged[position] for position in keep], empty_after=empty_after
                ),
                audit=audited,
                atomic=True,
            )
            summary.update(stored.summary())
            if stored.decisions is not None:
                decided = zip(keep, stored.decisions, strict=True)
                refused += [(load.lines[at], CONFLICT, d.error) for at, d in decided if d.status == CONFLICT]
        else:
            run_with_deadlock_retry(lambda: audit(summary))
        metrics.event_batch_observe(summary=summary)
        return LoadResult(summary=summary, refused=refused)
