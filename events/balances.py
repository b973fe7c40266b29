"""Balances from history: the event-type rules and the day buckets kept beside events.

ledger = deposit + transfer_in + refund - withdrawal - transfer_out - fee
held   = hold - release
available = ledger - held
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal

from django.db import connection

from events.models import BalanceBucket, EventType, WalletEvent

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
    values = ", ".join(["(%s, %s, %s, %s, %s, %s, %s)"] * len(rows))
    params: list[object] = []
    for (wallet_id, currency, day), delta in rows:
        params += [wallet_id, currency, day, delta.ledger, delta.held, delta.count, delta.last_event_at]
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} AS b (wallet_id, currency, day, ledger, held, event_count, last_event_at) "  # noqa: S608
            f"VALUES {values} "
            "ON CONFLICT (wallet_id, currency, day) DO UPDATE SET "
            "ledger = b.ledger + EXCLUDED.ledger, "
            "held = b.held + EXCLUDED.held, "
            "event_count = b.event_count + EXCLUDED.event_count, "
            "last_event_at = CASE WHEN EXCLUDED.last_event_at > b.last_event_at "
            "THEN EXCLUDED.last_event_at ELSE b.last_event_at END",
            params,
        )
