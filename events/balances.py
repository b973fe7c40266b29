"""Balances from history: the event-type rules and the day buckets kept beside events.

ledger = deposit + transfer_in + refund - withdrawal - transfer_out - fee
held   = hold - release
available = ledger - held
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from uuid import UUID

from django.db import connection, transaction

from amani.routers import read_connection
from audit.services import Actor, audit_record
from events.models import BalanceBucket, EventType, WalletEvent
from wallets.models import Wallet

LEDGER_SIGN: dict[str, int] = {
    EventType.DEPOSIT: 1,
    EventType.TRANSFER_IN: 1,
    EventType.REFUND: 1,
    EventType.WITHDRAWAL: -1,
    EventType.TRANSFER_OUT: -1,
    EventType.FEE: -1,
}
HELD_SIGN: dict[str, int] = {EventType.HOLD: 1, EventType.RELEASE: -1}


def bucket_day(occurred_at: dt.datetime) -> dt.date:
    """The UTC day an instant falls in."""
    return occurred_at.astimezone(dt.UTC).date()


@dataclass
class _Delta:
    ledger: Decimal = Decimal(0)
    held: Decimal = Decimal(0)
    count: int = 0
    last_event_at: dt.datetime | None = field(default=None)

    def add(self, event: WalletEvent) -> None:
        self.ledger += LEDGER_SIGN.get(event.event_type, 0) * event.amount
        self.held += HELD_SIGN.get(event.event_type, 0) * event.amount
        self.count += 1
        if self.last_event_at is None or event.occurred_at > self.last_event_at:
            self.last_event_at = event.occurred_at


def balance_buckets_apply(*, events: Iterable[WalletEvent]) -> None:
    """Add newly inserted events to their day buckets.

    Must run in the transaction that inserted the events. One upsert for all of
    them, in (wallet, currency, day) order so concurrent batches lock bucket rows
    in the same order and cannot deadlock.
    """
    deltas: dict[tuple[int, str, dt.date], _Delta] = {}
    for event in events:
        key = (event.wallet_id, event.currency, bucket_day(event.occurred_at))
        deltas.setdefault(key, _Delta()).add(event)
    if not deltas:
        return
    table = BalanceBucket._meta.db_table
    rows = sorted(deltas.items())
    tuples = [
        (wallet_id, currency, day, delta.ledger, delta.held, delta.count, delta.last_event_at)
        for (wallet_id, currency, day), delta in rows
    ]
    if connection.vendor == "postgresql":
        # Seven array parameters, not 7 x N placeholders: a backfill batch touches thousands of
        # buckets, and interpolating and parsing a VALUES list that long cost more than the upsert.
        source = (
            "SELECT * FROM unnest(%s::bigint[], %s::varchar[], %s::date[], %s::numeric[], %s::numeric[], "
            "%s::bigint[], %s::timestamptz[])"
        )
        # Array literals built with str(): every value here (ids, ISO codes, dates, decimals,
        # ISO timestamps) is free of the characters array syntax would need quoted.
        params: list[object] = [
            "{" + ",".join(value.isoformat() if isinstance(value, dt.date) else str(value) for value in column) + "}"
            for column in zip(*tuples, strict=True)
        ]
    else:
        source = "VALUES " + ", ".join(["(%s, %s, %s, %s, %s, %s, %s)"] * len(tuples))
        params = [value for row in tuples for value in row]
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} AS b (wallet_id, currency, day, ledger, held, event_count, last_event_at) "
            f"{source} "
            "ON CONFLICT (wallet_id, currency, day) DO UPDATE SET "
            "ledger = b.ledger + EXCLUDED.ledger, "
            "held = b.held + EXCLUDED.held, "
            "event_count = b.event_count + EXCLUDED.event_count, "
            "last_event_at = CASE WHEN EXCLUDED.last_event_at > b.last_event_at "
            "THEN EXCLUDED.last_event_at ELSE b.last_event_at END",
            params,
        )


@dataclass(frozen=True)
class CurrencyBalance:
    """One currency's balances over the events that occurred at or before an instant."""

    currency: str
    ledger: Decimal
    held: Decimal
    event_count: int
    last_event_at: dt.datetime | None

    @property
    def available(self) -> Decimal:
        return self.ledger - self.held


def _signed_amount_sql(signs: dict[str, int], amount: str) -> str:
    """A CASE over event types, built from the sign tables so the rule lives in one place."""
    plus = ", ".join(f"'{event_type}'" for event_type, sign in sorted(signs.items()) if sign > 0)
    minus = ", ".join(f"'{event_type}'" for event_type, sign in sorted(signs.items()) if sign < 0)
    return f"CASE WHEN e.event_type IN ({plus}) THEN {amount} WHEN e.event_type IN ({minus}) THEN -{amount} ELSE 0 END"


def balance_lateral_sql(*, by_currency: bool) -> str:
    """The balance of target `t` as a subquery usable in `CROSS/LEFT JOIN LATERAL`.

    `t` provides `wallet_id`, `as_of`, `day` (the UTC day of `as_of`), `day_start`
    (its first instant) and, when `by_currency`, `currency`. The result has one row
    per currency: `currency, ledger, held, event_count, last_event_at`.

    Whole days before `day` come from the buckets. The day of `as_of` comes from its
    buckets too when every event in them is at or before `as_of` (the usual case for
    "now"); otherwise from a range scan of that one day's events on
    `ix_event_wallet_occurred`, and the day's buckets are left out. The test is one
    subquery that does not depend on the scanned rows, so PostgreSQL decides it once
    and skips the scan entirely when the buckets suffice. The cost is bounded by the
    number of days with activity plus one day's events, never by the length of the
    history. One statement, so buckets and events are read from one snapshot.
    """
    buckets = BalanceBucket._meta.db_table
    events = WalletEvent._meta.db_table
    bucket_currency = "AND b.currency = t.currency " if by_currency else ""
    event_currency = "AND e.currency = t.currency " if by_currency else ""
    late_currency = "AND f.currency = t.currency " if by_currency else ""
    ledger = _signed_amount_sql(LEDGER_SIGN, "e.amount")
    held = _signed_amount_sql(HELD_SIGN, "e.amount")
    # True when some event of the day of as_of is after as_of: that day must be scanned.
    partial_day = (
        f"EXISTS (SELECT 1 FROM {buckets} f WHERE f.wallet_id = t.wallet_id {late_currency}"  # noqa: S608
        "AND f.day = t.day AND f.last_event_at > t.as_of)"
    )
    # Only table names and the event-type constants are interpolated; values are parameters of the caller.
    return (
        "SELECT x.currency, SUM(x.ledger) AS ledger, SUM(x.held) AS held, "  # noqa: S608
        "SUM(x.event_count)::bigint AS event_count, MAX(x.last_event_at) AS last_event_at FROM ("
        f"SELECT b.currency, b.ledger, b.held, b.event_count, b.last_event_at FROM {buckets} b "
        f"WHERE b.wallet_id = t.wallet_id {bucket_currency}"
        f"AND (b.day < t.day OR (b.day = t.day AND NOT {partial_day})) "
        "UNION ALL "
        f"SELECT e.currency, SUM({ledger}), SUM({held}), COUNT(*), MAX(e.occurred_at) FROM {events} e "
        f"WHERE {partial_day} AND e.wallet_id = t.wallet_id {event_currency}"
        "AND e.occurred_at >= t.day_start AND e.occurred_at <= t.as_of "
        "GROUP BY e.currency"
        ") x GROUP BY x.currency"
    )


def _day_bounds(as_of: dt.datetime) -> tuple[dt.date, dt.datetime]:
    day = bucket_day(as_of)
    return day, dt.datetime.combine(day, dt.time.min, tzinfo=dt.UTC)


def wallet_balances(*, wallet: Wallet, as_of: dt.datetime, currency: str | None = None) -> list[CurrencyBalance]:
    """Balances per currency over the wallet's events with `occurred_at <= as_of`.

    One entry per currency with such an event, ordered by currency; `[]` before the
    first event. Exact: sums are PostgreSQL numerics, returned as Decimal. One query.
    """
    if as_of.tzinfo is None:
        raise ValueError("as_of must be an aware datetime")
    day, day_start = _day_bounds(as_of)
    params: list[object] = [wallet.pk, as_of, day, day_start]
    target = "SELECT %s::bigint AS wallet_id, %s::timestamptz AS as_of, %s::date AS day, %s::timestamptz AS day_start"
    if currency is not None:
        target += ", %s::varchar AS currency"
        params.append(currency)
    sql = (
        f"SELECT r.currency, r.ledger, r.held, r.event_count, r.last_event_at FROM ({target}) t "  # noqa: S608
        f"CROSS JOIN LATERAL ({balance_lateral_sql(by_currency=currency is not None)}) r ORDER BY r.currency"
    )
    with read_connection(BalanceBucket).cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    return [
        CurrencyBalance(currency=code, ledger=ledger, held=held, event_count=count, last_event_at=last)
        for code, ledger, held, count, last in rows
    ]


@dataclass(frozen=True)
class BucketMismatch:
    """A day bucket that differs from the full recomputation of its events (None: the row is missing)."""

    wallet_id: UUID
    currency: str
    day: dt.date
    expected: tuple[Decimal, Decimal, int, dt.datetime] | None
    stored: tuple[Decimal, Decimal, int, dt.datetime] | None


def _recomputation_sql(*, one_wallet: bool) -> str:
    """Every (wallet, currency, day) whose bucket differs from the sums of its events, from the first event on."""
    buckets = BalanceBucket._meta.db_table
    events = WalletEvent._meta.db_table
    wallets = Wallet._meta.db_table
    ledger = _signed_amount_sql(LEDGER_SIGN, "e.amount")
    held = _signed_amount_sql(HELD_SIGN, "e.amount")
    event_filter = "WHERE e.wallet_id = %s " if one_wallet else ""
    bucket_filter = "WHERE b.wallet_id = %s " if one_wallet else ""
    return (
        "WITH expected AS ("  # noqa: S608
        f"SELECT e.wallet_id, e.currency, (e.occurred_at AT TIME ZONE 'UTC')::date AS day, "
        f"SUM({ledger}) AS ledger, SUM({held}) AS held, COUNT(*) AS event_count, "
        f"MAX(e.occurred_at) AS last_event_at FROM {events} e {event_filter}GROUP BY 1, 2, 3"
        "), stored AS ("
        f"SELECT b.wallet_id, b.currency, b.day, b.ledger, b.held, b.event_count, b.last_event_at "
        f"FROM {buckets} b {bucket_filter}"
        ") SELECT w.public_id, COALESCE(x.currency, s.currency), COALESCE(x.day, s.day), "
        "x.wallet_id IS NOT NULL, x.ledger, x.held, x.event_count, x.last_event_at, "
        "s.wallet_id IS NOT NULL, s.ledger, s.held, s.event_count, s.last_event_at "
        "FROM expected x FULL OUTER JOIN stored s "
        "ON s.wallet_id = x.wallet_id AND s.currency = x.currency AND s.day = x.day "
        f"JOIN {wallets} w ON w.id = COALESCE(x.wallet_id, s.wallet_id) "
        "WHERE x.wallet_id IS NULL OR s.wallet_id IS NULL OR x.ledger <> s.ledger OR x.held <> s.held "
        "OR x.event_count <> s.event_count OR x.last_event_at <> s.last_event_at "
        "ORDER BY 1, 2, 3"
    )


def balance_buckets_verify(*, wallet: Wallet | None = None) -> Iterator[BucketMismatch]:
    """Recompute every day bucket from the events themselves and yield each one that differs.

    One statement, so the events and buckets are compared in one snapshot even while
    ingestion goes on. Results stream in chunks; memory does not grow with history.
    """
    sql = _recomputation_sql(one_wallet=wallet is not None)
    params = [wallet.pk, wallet.pk] if wallet is not None else []
    # A server-side cursor: the rows stream, however many there are.
    with connection.chunked_cursor() as cursor:
        cursor.execute(sql, params)
        while rows := cursor.fetchmany(1000):
            for row in rows:
                public_id, currency, day, has_expected, *expected, has_stored = row[:9]
                stored = row[9:]
                yield BucketMismatch(
                    wallet_id=public_id,
                    currency=currency,
                    day=day,
                    expected=tuple(expected) if has_expected else None,
                    stored=tuple(stored) if has_stored else None,
                )


def balance_buckets_repair(*, wallet: Wallet | None = None, actor: Actor) -> list[BucketMismatch]:
    """Rewrite every bucket that differs from its events; returns what was repaired.

    Takes a SHARE lock on the events table for the transaction: ingestion waits (it
    cannot insert an event between the recomputation and the rewrite) while reads go on.
    The repair is audited in the same transaction.
    """
    buckets = BalanceBucket._meta.db_table
    events = WalletEvent._meta.db_table
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(f"LOCK TABLE {events} IN SHARE MODE")
        mismatches = list(balance_buckets_verify(wallet=wallet))
        wallet_pks = dict(
            Wallet.objects.filter(public_id__in={m.wallet_id for m in mismatches}).values_list("public_id", "pk")
        )
        with connection.cursor() as cursor:
            for mismatch in mismatches:
                key = [wallet_pks[mismatch.wallet_id], mismatch.currency, mismatch.day]
                if mismatch.expected is None:
                    cursor.execute(f"DELETE FROM {buckets} WHERE wallet_id = %s AND currency = %s AND day = %s", key)  # noqa: S608
                    continue
                cursor.execute(
                    f"INSERT INTO {buckets} (wallet_id, currency, day, ledger, held, event_count, last_event_at) "  # noqa: S608
                    "VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (wallet_id, currency, day) DO UPDATE SET "
                    "ledger = EXCLUDED.ledger, held = EXCLUDED.held, event_count = EXCLUDED.event_count, "
                    "last_event_at = EXCLUDED.last_event_at",
                    [*key, *mismatch.expected],
                )
        if mismatches:
            audit_record(
                action="repair_balance_buckets",
                actor=actor,
                resource_type="balance_bucket",
                resource_id=str(wallet.public_id) if wallet is not None else "*",
                details={
                    "repaired": len(mismatches),
                    "buckets": [[str(m.wallet_id), m.currency, m.day.isoformat()] for m in mismatches[:100]],
                },
            )
    return mismatches
