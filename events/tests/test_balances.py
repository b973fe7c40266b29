"""Balances from history: hand-computed expectations over every event type."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from events.balances import CurrencyBalance, wallet_balances
from events.models import BalanceBucket, WalletEvent
from events.tests.factories import at, record
from testing.races import race
from wallets.models import Wallet
from wallets.tests.factories import WalletFactory


def as_dict(balance: CurrencyBalance) -> dict[str, object]:
    return {
        "currency": balance.currency,
        "ledger": balance.ledger,
        "held": balance.held,
        "available": balance.available,
        "event_count": balance.event_count,
        "last_event_at": balance.last_event_at,
    }


@pytest.fixture
def history(wallet) -> Wallet:
    """Every event type, NGN (2 digits) and KWD (3 digits), over five UTC days."""
    for event_type, amount, currency, occurred_at in [
        ("deposit", "1500.00", "NGN", "2026-11-01T08:00:00Z"),
        ("fee", "12.50", "NGN", "2026-11-01T09:30:00Z"),
        ("hold", "200.00", "NGN", "2026-11-02T10:00:00Z"),
        ("withdrawal", "300.25", "NGN", "2026-11-02T12:00:00Z"),
        ("transfer_in", "1000.00", "NGN", "2026-11-03T00:00:00Z"),
        ("release", "50.00", "NGN", "2026-11-03T14:00:00Z"),
        ("transfer_out", "400.00", "NGN", "2026-11-03T18:00:00Z"),
        ("refund", "12.50", "NGN", "2026-11-04T09:00:00Z"),
        ("deposit", "99999.99", "NGN", "2026-11-05T10:00:00Z"),
        ("deposit", "10.125", "KWD", "2026-11-01T23:59:59.999999Z"),
        ("hold", "2.500", "KWD", "2026-11-02T11:00:00Z"),
        ("fee", "0.375", "KWD", "2026-11-03T13:00:00Z"),
        ("release", "1.000", "KWD", "2026-11-03T16:00:00Z"),
        ("withdrawal", "20.000", "KWD", "2026-11-04T09:00:00Z"),
    ]:
        record(wallet, event_type, amount, currency, occurred_at)
    return wallet


def test_balance_in_the_middle_of_a_day_counts_events_up_to_as_of_inclusive(history):
    # 15:00+01:00 is 14:00Z: the NGN release at exactly 14:00Z counts, the 18:00Z transfer_out does not.
    balances = wallet_balances(wallet=history, as_of=at("2026-11-03T15:00:00+01:00"))
    assert [as_dict(b) for b in balances] == [
        {
            "currency": "KWD",
            "ledger": Decimal("9.750"),
            "held": Decimal("2.500"),
            "available": Decimal("7.250"),
            "event_count": 3,
            "last_event_at": at("2026-11-03T13:00:00Z"),
        },
        {
            "currency": "NGN",
            "ledger": Decimal("2187.25"),
            "held": Decimal("150.00"),
            "available": Decimal("2037.25"),
            "event_count": 6,
            "last_event_at": at("2026-11-03T14:00:00Z"),
        },
    ]


def test_backdated_event_changes_every_later_balance(history):
    record(history, "deposit", "100.00", "NGN", "2026-11-02T08:00:00Z")

    middle = wallet_balances(wallet=history, as_of=at("2026-11-03T14:00:00Z"), currency="NGN")
    assert [as_dict(b) for b in middle] == [
        {
            "currency": "NGN",
            "ledger": Decimal("2287.25"),
            "held": Decimal("150.00"),
            "available": Decimal("2137.25"),
            "event_count": 7,
            "last_event_at": at("2026-11-03T14:00:00Z"),
        }
    ]
    early = wallet_balances(wallet=history, as_of=at("2026-11-02T09:00:00Z"))
    assert [(b.currency, b.ledger, b.held, b.available, b.event_count) for b in early] == [
        ("KWD", Decimal("10.125"), Decimal(0), Decimal("10.125"), 1),
        ("NGN", Decimal("1587.50"), Decimal(0), Decimal("1587.50"), 3),
    ]
    assert early[0].last_event_at == at("2026-11-01T23:59:59.999999Z")
    assert early[1].last_event_at == at("2026-11-02T08:00:00Z")


def test_end_of_history_with_a_negative_ledger(history):
    balances = wallet_balances(wallet=history, as_of=at("2026-11-06T00:00:00Z"))
    assert [(b.currency, b.ledger, b.held, b.available, b.event_count) for b in balances] == [
        ("KWD", Decimal("-10.250"), Decimal("1.500"), Decimal("-11.750"), 5),
        ("NGN", Decimal("101799.74"), Decimal("150.00"), Decimal("101649.74"), 9),
    ]


def test_whole_day_bucket_and_event_scan_agree(history):
    # At 18:00Z every NGN event of 2026-11-03 is at or before as_of, so the day's bucket is used whole;
    # a microsecond earlier the day is scanned instead.
    at_last = wallet_balances(wallet=history, as_of=at("2026-11-03T18:00:00Z"), currency="NGN")
    just_before = wallet_balances(wallet=history, as_of=at("2026-11-03T17:59:59.999999Z"), currency="NGN")
    assert (at_last[0].ledger, at_last[0].event_count) == (Decimal("1787.25"), 7)
    assert (just_before[0].ledger, just_before[0].event_count) == (Decimal("2187.25"), 6)


def test_day_boundary_event_belongs_to_its_own_day(history):
    before_midnight = wallet_balances(wallet=history, as_of=at("2026-11-02T23:59:59.999999Z"), currency="NGN")
    at_midnight = wallet_balances(wallet=history, as_of=at("2026-11-03T00:00:00Z"), currency="NGN")
    assert before_midnight[0].ledger == Decimal("1187.25")
    assert at_midnight[0].ledger == Decimal("2187.25")


def test_no_balances_before_the_first_event(history):
    assert wallet_balances(wallet=history, as_of=at("2026-11-01T07:59:59.999999Z")) == []


def test_only_currencies_with_an_event_so_far(history):
    balances = wallet_balances(wallet=history, as_of=at("2026-11-01T08:00:00Z"))
    assert [(b.currency, b.ledger, b.event_count) for b in balances] == [("NGN", Decimal("1500.00"), 1)]


def test_other_wallets_do_not_leak_in(history):
    other = WalletFactory()
    record(other, "deposit", "5.00", "NGN", "2026-11-01T01:00:00Z")
    balances = wallet_balances(wallet=history, as_of=at("2026-11-01T08:30:00Z"))
    assert [(b.currency, b.ledger, b.event_count) for b in balances] == [("NGN", Decimal("1500.00"), 1)]


def test_balance_is_one_query(history, django_assert_num_queries):
    with django_assert_num_queries(1):
        wallet_balances(wallet=history, as_of=at("2026-11-03T14:00:00Z"))


def test_naive_as_of_is_refused(history):
    with pytest.raises(ValueError):
        wallet_balances(wallet=history, as_of=dt.datetime(2026, 11, 3, 14))


THREADS = 8
EVENTS_PER_THREAD = 20


@pytest.mark.django_db(transaction=True)
def test_concurrent_ingests_into_one_bucket_lose_nothing():
    wallet = WalletFactory()

    def worker(index: int) -> None:
        for n in range(EVENTS_PER_THREAD):
            event_type = "deposit" if n % 3 else "hold"
            # Every event lands on 2026-11-10 UTC: one bucket row that all threads update.
            record(wallet, event_type, f"{index + 1}.{n:02d}", "NGN", f"2026-11-10T{n:02d}:{index:02d}:00Z")

    errors = [result for result in race(THREADS, worker) if isinstance(result, Exception)]
    assert errors == []

    bucket = BalanceBucket.objects.get(wallet=wallet, currency="NGN", day=dt.date(2026, 11, 10))
    events = list(WalletEvent.objects.filter(wallet=wallet))
    assert len(events) == THREADS * EVENTS_PER_THREAD
    assert bucket.event_count == THREADS * EVENTS_PER_THREAD
    assert bucket.ledger == sum((e.amount for e in events if e.event_type == "deposit"), Decimal(0))
    assert bucket.held == sum((e.amount for e in events if e.event_type == "hold"), Decimal(0))
    assert bucket.last_event_at == max(e.occurred_at for e in events)


def test_day_complete_in_one_currency_and_partial_in_another(history):
    # At 17:00Z the KWD events of 2026-11-03 are all past (last 16:00Z), the NGN transfer_out (18:00Z) is not.
    balances = wallet_balances(wallet=history, as_of=at("2026-11-03T17:00:00Z"))
    assert [(b.currency, b.ledger, b.held, b.available, b.event_count, b.last_event_at) for b in balances] == [
        ("KWD", Decimal("9.750"), Decimal("1.500"), Decimal("8.250"), 4, at("2026-11-03T16:00:00Z")),
        ("NGN", Decimal("2187.25"), Decimal("150.00"), Decimal("2037.25"), 6, at("2026-11-03T14:00:00Z")),
    ]
    kwd_only = wallet_balances(wallet=history, as_of=at("2026-11-03T17:00:00Z"), currency="KWD")
    assert [(b.currency, b.ledger, b.event_count) for b in kwd_only] == [("KWD", Decimal("9.750"), 4)]
