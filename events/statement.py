"""A wallet's statement in one currency: opening balance, entries oldest first with the balance after each, closing.

Built on the day buckets (events.balances) so that a page costs about what its entries
cost, wherever it falls in the history:

- `opening` is the balance over the events before `from`, `closing` the balance as of `to`
  (`wallet_balances`): whole-day bucket sums plus at most one day's events.
- The running balance of a page starts from the balance *through the keyset position* of
  the entry before the page, (occurred_at, id) <= (T, pk): the buckets of the days before
  T's UTC day plus T's day's events up to that position. Entries are ordered by
  (occurred_at, id) ascending: ties oldest-recorded first.
- Every page reads its three parts in one REPEATABLE READ snapshot, so an event recorded
  while a page is read never makes its last entry disagree with its `closing`.

One selector serves the API (`wallet_statement_page`) and the console's CSV download
(`wallet_statement_entries`, every page in turn).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal

from django.db import connections, router, transaction
from django.db.models import Q, Value
from django.utils import timezone

from amani.api.pagination import cursor_invalid, cursor_issue, cursor_read
from events.balances import (
    balance_bucket_sums,
    balance_event_sums,
    day_bounds,
    wallet_balances,
)
from events.models import HELD_SIGN, LEDGER_SIGN, BalanceBucket, WalletEvent
from events.queries import snapshot_repeatable_read
from wallets.models import Wallet

ZERO = Decimal(0)
HALF_DAY = dt.timedelta(hours=12)


@dataclass(frozen=True)
class Balance:
    """Ledger and held of one currency; available is derived, as everywhere (events.balances)."""

    ledger: Decimal = ZERO
    held: Decimal = ZERO

    @property
    def available(self) -> Decimal:
        return self.ledger - self.held

    def after(self, event: WalletEvent) -> Balance:
        """The balance once `event` is applied (the sign tables of events.balances)."""
        return Balance(
            ledger=self.ledger + LEDGER_SIGN.get(event.event_type, 0) * event.amount,
            held=self.held + HELD_SIGN.get(event.event_type, 0) * event.amount,
        )


@dataclass(frozen=True)
class StatementEntry:
    event: WalletEvent
    balance: Balance


@dataclass(frozen=True)
class StatementPage:
    wallet: Wallet
    currency: str
    period_from: dt.datetime | None  # None: the wallet has no event in this currency up to `to`
    period_to: dt.datetime
    opening: Balance
    closing: Balance
    entries: list[StatementEntry]
    next_cursor: str | None


def _balance_through(*, wallet: Wallet, currency: str, at: dt.datetime, pk: int, using: str) -> Balance:
    """The balance over the events with (occurred_at, id) <= (at, pk): one statement.

    Whole-day bucket sums UNION ALL one range scan of ix_event_wallet_occurred inside
    `at`'s UTC day: before noon, the buckets of the earlier days plus that day's events up
    to the position; from noon, the buckets up to that day included minus its events
    after the position. Either way at most half a day's events are read.
    """
    day, day_start = day_bounds(at)
    columns = ("sum_ledger", "sum_held")
    events = WalletEvent.objects.using(using).filter(wallet_id=wallet.pk, currency=currency)
    if at - day_start < HALF_DAY or day == dt.date.max:  # (the last representable day has no next one)
        bucket_days, sign = Q(day__lt=day), 1
        events = events.filter(occurred_at__gte=day_start, occurred_at__lte=at).filter(
            Q(occurred_at__lt=at) | Q(id__lte=pk)
        )
    else:
        bucket_days, sign = Q(day__lte=day), -1
        events = events.filter(occurred_at__gte=at, occurred_at__lt=day_start + 2 * HALF_DAY).filter(
            Q(occurred_at__gt=at) | Q(id__gt=pk)
        )
    buckets = (
        BalanceBucket.objects.using(using)
        .filter(bucket_days, wallet_id=wallet.pk, currency=currency)
        .order_by()
        .values("wallet_id")
        .annotate(**{name: balance_bucket_sums()[name] for name in columns})
        .values_list(*columns, Value(1))
    )
    event_sums = (
        events.order_by()
        .values("wallet_id")
        .annotate(**{name: balance_event_sums()[name] for name in columns})
        .values_list(*columns, Value(sign))
    )
    ledger = held = ZERO
    for sum_ledger, sum_held, row_sign in buckets.union(event_sums, all=True):
        ledger += row_sign * Decimal(sum_ledger or 0)
        held += row_sign * Decimal(sum_held or 0)
    return Balance(ledger=ledger, held=held)


def _first_event_at(*, wallet: Wallet, currency: str, until: dt.datetime, using: str) -> dt.datetime | None:
    """When the wallet's first event in `currency` occurred (at or before `until`), or None.

    The first day comes from the buckets (unique index on wallet, currency, day), so a
    currency the wallet rarely or never used does not walk its whole history.
    """
    first_day = (
        BalanceBucket.objects.using(using)
        .filter(wallet_id=wallet.pk, currency=currency)
        .order_by("day")
        .values_list("day", flat=True)
        .first()
    )
    if first_day is None:
        return None
    start = dt.datetime.combine(first_day, dt.time.min, tzinfo=dt.UTC)
    first = (
        WalletEvent.objects.using(using)
        .filter(wallet_id=wallet.pk, currency=currency, occurred_at__gte=start, occurred_at__lte=until)
        .order_by("occurred_at", "id")
        .values_list("occurred_at", flat=True)
        .first()
    )
    return first


def _listing(wallet: Wallet, currency: str, period_from: dt.datetime | None, period_to: dt.datetime | None) -> str:
    """What a cursor is bound to: the wallet, the currency and the period as the caller gave it."""
    bounds = ["" if value is None else value.astimezone(dt.UTC).isoformat() for value in (period_from, period_to)]
    return ":".join(["wallet-statement", str(wallet.public_id), currency, *bounds])


def _position(cursor: str, listing: str) -> tuple[dt.datetime, int, dt.datetime | None, dt.datetime]:
    """(occurred_at, id) of the last entry before the page, and the period the first page resolved."""
    try:
        at, pk, period_from, period_to = cursor_read(listing, cursor)
        return (
            dt.datetime.fromisoformat(at),
            int(pk),
            None if period_from is None else dt.datetime.fromisoformat(period_from),
            dt.datetime.fromisoformat(period_to),
        )
    except (ValueError, TypeError):
        raise cursor_invalid() from None


def wallet_statement_page(
    *,
    wallet: Wallet,
    currency: str,
    period_from: dt.datetime | None = None,
    period_to: dt.datetime | None = None,
    limit: int,
    cursor: str | None = None,
) -> StatementPage:
    """One page of the statement of `wallet` in `currency` over [`period_from`, `period_to`] (inclusive).

    `period_from` defaults to the wallet's first event in the currency, `period_to` to now;
    the first page resolves both and its cursor carries them, so every page of one
    statement has the same period and the same `closing`. Raises ValueError when
    `period_from` is after `period_to`, and DRF's ValidationError (a 400) for a cursor
    this server did not issue for this wallet, currency and period.
    """
    listing = _listing(wallet, currency, period_from, period_to)
    using = router.db_for_read(WalletEvent)
    owns_transaction = not connections[using].in_atomic_block
    with transaction.atomic(using=using):
        if owns_transaction:
            # One snapshot for the page's statements (opening, entries, closing): see the module docstring.
            snapshot_repeatable_read(using)
        if cursor:
            after_at, after_pk, resolved_from, resolved_to = _position(cursor, listing)
        else:
            resolved_to = period_to or timezone.now()
            if period_from is not None and period_from > resolved_to:
                raise ValueError("from must not be after to.")
            resolved_from = period_from or _first_event_at(
                wallet=wallet, currency=currency, until=resolved_to, using=using
            )
        if resolved_from is None:  # no event in this currency up to `to`: an empty statement
            return StatementPage(wallet, currency, None, resolved_to, Balance(), Balance(), [], None)

        # Strictly before `from` (no event has id 0). Nothing on the first page of a statement
        # that starts at the first event; read again on later pages (a backdated event may have come).
        opening = (
            _balance_through(wallet=wallet, currency=currency, at=resolved_from, pk=0, using=using)
            if period_from is not None or cursor
            else Balance()
        )
        rows = WalletEvent.objects.using(using).filter(
            wallet_id=wallet.pk, currency=currency, occurred_at__gte=resolved_from, occurred_at__lte=resolved_to
        )
        if cursor:
            # The redundant `>=` bound starts the index scan at the cursor (as amani.api.pagination does).
            rows = rows.filter(Q(occurred_at__gt=after_at) | Q(occurred_at=after_at, id__gt=after_pk))
            rows = rows.filter(occurred_at__gte=after_at)
            running = _balance_through(wallet=wallet, currency=currency, at=after_at, pk=after_pk, using=using)
        else:
            running = opening
        page = list(rows.order_by("occurred_at", "id")[: limit + 1])
        closing_rows = wallet_balances(wallet=wallet, as_of=resolved_to, currency=currency)
    closing = Balance(closing_rows[0].ledger, closing_rows[0].held) if closing_rows else Balance()

    entries = []
    for event in page[:limit]:
        running = running.after(event)
        entries.append(StatementEntry(event=event, balance=running))
    next_cursor = None
    if len(page) > limit:
        last = page[limit - 1]
        position = [last.occurred_at.isoformat(), last.id, resolved_from.isoformat(), resolved_to.isoformat()]
        next_cursor = cursor_issue(listing, position)
    return StatementPage(wallet, currency, resolved_from, resolved_to, opening, closing, entries, next_cursor)


def wallet_statement_entries(
    *,
    wallet: Wallet,
    currency: str,
    period_from: dt.datetime | None = None,
    period_to: dt.datetime | None = None,
    page_size: int = 1000,
) -> Iterator[StatementPage]:
    """Every page of one statement in turn (the console's CSV download); memory stays one page."""
    cursor = None
    while True:
        page = wallet_statement_page(
            wallet=wallet,
            currency=currency,
            period_from=period_from,
            period_to=period_to,
            limit=page_size,
            cursor=cursor,
        )
        yield page
        if page.next_cursor is None:
            return
        cursor = page.next_cursor
