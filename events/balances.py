"""Balances from history, by the event-type rules (the sign tables of events.models) and the day
buckets kept beside events (their SQL: events.queries).

ledger = deposit + transfer_in + refund - withdrawal - transfer_out - fee
held   = hold - release
available = ledger - held
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from uuid import UUID

from django.db import router, transaction
from django.db.models import (
    Aggregate,
    Case,
    Count,
    DecimalField,
    Exists,
    F,
    Max,
    OuterRef,
    Q,
    QuerySet,
    Sum,
    Value,
    When,
)

from amani.actors import Actor
from audit.models import AuditAction, AuditResource
from audit.services import audit_record
from events.models import AMOUNT_PLACES, HELD_SIGN, LEDGER_SIGN, TOTAL_DIGITS, BalanceBucket, WalletEvent
from events.queries import bucket_mismatch_rows, buckets_lock_share, buckets_rewrite
from wallets.models import Wallet


def bucket_day(occurred_at: dt.datetime) -> dt.date:
    """The UTC day an instant falls in."""
    return occurred_at.astimezone(dt.UTC).date()


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


def _signed_amount(signs: dict[str, int]) -> Case:
    """`amount` signed by event type, built from a sign table so the rule lives in one place."""
    plus = sorted(event_type for event_type, sign in signs.items() if sign > 0)
    minus = sorted(event_type for event_type, sign in signs.items() if sign < 0)
    return Case(
        When(event_type__in=plus, then=F("amount")),
        When(event_type__in=minus, then=-F("amount")),
        default=Value(Decimal(0)),
        output_field=DecimalField(max_digits=TOTAL_DIGITS, decimal_places=AMOUNT_PLACES),
    )


# The two halves of a balance as of an instant, as ORM filters. Their arguments are values
# (one wallet) or expressions (OuterRef to a provider report, events.reconciliation), so
# the balance and the reconciliation read exactly the same rows. The halves are disjoint:
# the buckets of the whole UTC days before the day of `as_of`, and that day's bucket too
# when its last event is at or before `as_of` (then every event in it is: it is used
# whole); the events of that day up to `as_of` inclusive only for the currencies whose
# bucket ends after `as_of`. So no event is counted twice, and the usual "now" reads no
# event at all, whatever the day's volume or the planner's estimate of it.
def balance_bucket_rows(
    *, wallet: Any, day: Any, as_of: Any, currency: Any = None, using: str | None = None
) -> QuerySet:
    """The buckets of whole days before `day`, and `day`'s own when it ends at or before `as_of`."""
    rows = BalanceBucket.objects.using(using).filter(
        Q(day__lt=day) | Q(day=day, last_event_at__lte=as_of), wallet_id=wallet
    )
    return rows if currency is None else rows.filter(currency=currency)


def _one_level_in(value: Any) -> Any:
    """`value` as seen from a subquery nested one level deeper (an OuterRef must then reach one further out)."""
    return OuterRef(value) if isinstance(value, OuterRef) else value


def balance_event_rows(
    *, wallet: Any, day: Any, day_start: Any, as_of: Any, currency: Any = None, using: str | None = None
) -> QuerySet:
    """The events from `day_start` to `as_of` inclusive whose day bucket ends after `as_of`.

    A range scan of ix_event_wallet_occurred, joined to the bucket of the same wallet,
    currency and day: a bucket whose last event is at or before `as_of` is counted
    whole by `balance_bucket_rows` instead, and its events are not read.
    """
    unfinished = BalanceBucket.objects.using(using).filter(
        wallet_id=OuterRef("wallet_id"),
        currency=OuterRef("currency"),
        day=_one_level_in(day),
        last_event_at__gt=_one_level_in(as_of),
    )
    rows = WalletEvent.objects.using(using).filter(
        Exists(unfinished), wallet_id=wallet, occurred_at__gte=day_start, occurred_at__lte=as_of
    )
    return rows if currency is None else rows.filter(currency=currency)


def balance_bucket_sums() -> dict[str, Aggregate]:
    """Aggregates over bucket rows, named like the event ones so the two can be added up."""
    return {
        "sum_ledger": Sum("ledger"),
        "sum_held": Sum("held"),
        "sum_count": Sum("event_count"),
        "max_at": Max("last_event_at"),
    }


def balance_event_sums() -> dict[str, Aggregate]:
    """Aggregates over event rows: the ledger and held rules applied to each amount."""
    return {
        "sum_ledger": Sum(_signed_amount(LEDGER_SIGN)),
        "sum_held": Sum(_signed_amount(HELD_SIGN)),
        "sum_count": Count("id"),
        "max_at": Max("occurred_at"),
    }


def day_bounds(as_of: dt.datetime) -> tuple[dt.date, dt.datetime]:
    """The UTC day of `as_of` and its first instant."""
    day = bucket_day(as_of)
    return day, dt.datetime.combine(day, dt.time.min, tzinfo=dt.UTC)


def _balance_rows(*, wallet: Any, day: Any, day_start: Any, as_of: Any, currency: Any, using: str) -> QuerySet:
    """Per currency, the bucket sums UNION ALL the day's event sums: up to two rows each, added up by the caller."""
    columns = ("currency", "sum_ledger", "sum_held", "sum_count", "max_at")
    buckets = (
        balance_bucket_rows(wallet=wallet, day=day, as_of=as_of, currency=currency, using=using)
        .order_by()
        .values("currency")
        .annotate(**balance_bucket_sums())
        .values_list(*columns)
    )
    events = (
        balance_event_rows(wallet=wallet, day=day, day_start=day_start, as_of=as_of, currency=currency, using=using)
        .order_by()
        .values("currency")
        .annotate(**balance_event_sums())
        .values_list(*columns)
    )
    return buckets.union(events, all=True)


def wallet_balances(*, wallet: Wallet, as_of: dt.datetime, currency: str | None = None) -> list[CurrencyBalance]:
    """Balances per currency over the wallet's events with `occurred_at <= as_of`.

    One entry per currency with such an event, ordered by currency; `[]` before the
    first event. One statement (the bucket sums UNION ALL the day's event sums, added
    up here), so both halves are read from one snapshot. The cost is bounded by the
    number of days with activity plus, only when `as_of` falls before the last event
    of its day, that day's events up to `as_of`; never by the length of the history.
    Exact: numeric sums, Decimal.
    """
    if as_of.tzinfo is None:
        raise ValueError("as_of must be an aware datetime")
    day, day_start = day_bounds(as_of)
    # The router's choice, as for any ORM read: the replica inside reading_from_replica().
    using = router.db_for_read(BalanceBucket)
    rows = _balance_rows(wallet=wallet.pk, day=day, day_start=day_start, as_of=as_of, currency=currency, using=using)
    totals: dict[str, list] = {}
    for code, ledger, held, count, last in rows:
        total = totals.setdefault(code, [Decimal(0), Decimal(0), 0, None])
        total[0] += Decimal(ledger)
        total[1] += Decimal(held)
        total[2] += int(count)
        if total[3] is None or last > total[3]:
            total[3] = last
    return [
        CurrencyBalance(currency=code, ledger=ledger, held=held, event_count=count, last_event_at=last)
        for code, (ledger, held, count, last) in sorted(totals.items())
    ]


@dataclass(frozen=True)
class BucketMismatch:
    """A day bucket that differs from the full recomputation of its events (None: the row is missing)."""

    wallet_id: UUID
    currency: str
    day: dt.date
    expected: tuple[Decimal, Decimal, int, dt.datetime] | None
    stored: tuple[Decimal, Decimal, int, dt.datetime] | None


def balance_buckets_verify(*, wallet: Wallet | None = None) -> Iterator[BucketMismatch]:
    """Recompute every day bucket from the events themselves and yield each one that differs.

    One statement, so the events and buckets are compared in one snapshot even while
    ingestion goes on. Results stream in chunks; memory does not grow with history.
    """
    return _mismatches(wallet=wallet)


def _mismatches(*, wallet: Wallet | None) -> Iterator[BucketMismatch]:
    for row in bucket_mismatch_rows(wallet_pk=None if wallet is None else wallet.pk):
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

    Takes a SHARE lock on the buckets table for the transaction: every event insert
    upserts its bucket in the same transaction, so ingestion waits (an event committed
    meanwhile would be missing from the recomputation) while reads go on. Not on the
    events table: the service's database role may not lock it that strongly (it takes
    UPDATE or DELETE privileges, which events never grant; amani.database_roles).
    The repair is audited in the same transaction.
    """
    with transaction.atomic():
        buckets_lock_share()
        mismatches = list(_mismatches(wallet=wallet))
        wallet_pks = dict(
            Wallet.objects.filter(public_id__in={m.wallet_id for m in mismatches}).values_list("public_id", "pk")
        )
        buckets_rewrite(((wallet_pks[m.wallet_id], m.currency, m.day), m.expected) for m in mismatches)
        if mismatches:
            audit_record(
                action=AuditAction.REPAIR_BALANCE_BUCKETS,
                actor=actor,
                resource_type=AuditResource.BALANCE_BUCKET,
                resource_id=str(wallet.public_id) if wallet is not None else "*",
                details={
                    "repaired": len(mismatches),
                    "buckets": [[str(m.wallet_id), m.currency, m.day.isoformat()] for m in mismatches[:100]],
                },
            )
    return mismatches
