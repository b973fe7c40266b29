"""Concurrent ingestion through the events service keeps the day buckets exact."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from amani.actors import Actor
from events.balances import balance_buckets_verify, wallet_balances
from events.models import BalanceBucket
from events.services import event_ingest
from events.validation import EventInput
from testing.races import race
from wallets.tests.factories import WalletFactory

THREADS = 6
EVENTS = 30


@pytest.mark.django_db(transaction=True)
def test_racing_ingests_with_repeats_leave_buckets_equal_to_a_recomputation():
    wallet = WalletFactory()

    def worker(index: int) -> None:
        # Every thread sends the same 30 events (in a different order): each must be stored once.
        order = list(range(EVENTS))
        order = order[index * 5 :] + order[: index * 5]
        for n in order:
            item = EventInput(
                event_type="deposit" if n % 2 else "withdrawal",
                amount=Decimal(f"{n + 1}.25"),
                currency="NGN",
                occurred_at=dt.datetime(2026, 11, 10, n % 24, n, tzinfo=dt.UTC),
                provider_event_id=f"race_{n}",
            )
            event_ingest(wallet_id=wallet.public_id, item=item, actor=Actor.command("test"))

    errors = [result for result in race(THREADS, worker) if isinstance(result, Exception)]
    assert errors == []

    assert list(balance_buckets_verify(wallet=wallet)) == []
    bucket = BalanceBucket.objects.get(wallet=wallet)
    # Deposits (odd n): 2.25 + 4.25 + ... + 30.25 = 243.75; withdrawals (even n): 1.25 + ... + 29.25 = 228.75.
    assert (bucket.ledger, bucket.event_count) == (Decimal("15.00"), EVENTS)
    [balance] = wallet_balances(wallet=wallet, as_of=dt.datetime(2026, 11, 11, tzinfo=dt.UTC))
    assert (balance.ledger, balance.held, balance.event_count) == (Decimal("15.00"), Decimal(0), EVENTS)
