"""Factories for the events app (shared by the ingestion and balance tests)."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

import factory

from events.models import EventType, WalletEvent
from wallets.models import Provider, Wallet


class WalletFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Wallet

    user_id = factory.LazyFunction(uuid.uuid4)
    provider = Provider.FINCRA
    provider_account_id = factory.Sequence(lambda n: f"acct_{n}")
    metadata = factory.LazyFunction(dict)


class WalletEventFactory(factory.django.DjangoModelFactory):
    """A stored event, written directly (no buckets, no audit): for reads and for 'earlier event' setups."""

    class Meta:
        model = WalletEvent

    wallet = factory.SubFactory(WalletFactory)
    provider = factory.LazyAttribute(lambda event: event.wallet.provider)
    event_type = EventType.DEPOSIT
    amount = Decimal("100.00")
    currency = "NGN"
    provider_event_id = factory.Sequence(lambda n: f"evt_{n}")
    occurred_at = factory.LazyFunction(lambda: dt.datetime(2026, 11, 20, 14, 2, 18, tzinfo=dt.UTC))
    metadata = factory.LazyFunction(dict)


def event_body(**overrides: object) -> dict[str, object]:
    """A valid ingest body (API.md's example); override or drop (value None) any field."""
    body: dict[str, object] = {
        "event_type": "deposit",
        "amount": "1500.00",
        "currency": "NGN",
        "provider_event_id": f"fincra_evt_{uuid.uuid4().hex[:12]}",
        "occurred_at": "2026-11-20T14:02:18Z",
        "metadata": {"channel": "bank_transfer"},
    }
    body.update(overrides)
    return {key: value for key, value in body.items() if value is not None}
