"""Factories for the events app: stored events, history written as ingestion writes it, ingest bodies.

Wallets come from wallets.tests.factories.WalletFactory (one factory per model, owned by its app)."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

import factory
from django.db import connection, transaction

from amani.actors import Actor
from events.models import EventType, ProviderBalanceReport, WalletEvent
from events.queries import bucket_upsert_sql
from events.reconciliation import provider_balance_record
from wallets.models import Wallet
from wallets.tests.factories import WalletFactory


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


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


def record(
    wallet: Wallet, event_type: str, amount: str, currency: str, occurred_at: str, idempotency_key: str | None = None
) -> WalletEvent:
    """Insert one event and its bucket delta in one transaction, as ingestion does."""
    with transaction.atomic():
        event = WalletEvent.objects.create(
            wallet=wallet,
            provider=wallet.provider,
            event_type=event_type,
            amount=Decimal(amount),
            currency=currency,
            provider_event_id=f"evt_{uuid.uuid4().hex}",
            occurred_at=at(occurred_at),
            idempotency_key=idempotency_key,
        )
        with connection.cursor() as cursor:
            cursor.execute(
                bucket_upsert_sql(
                    f"(SELECT wallet_id, currency, event_type, amount, occurred_at FROM {WalletEvent._meta.db_table} "  # noqa: S608
                    "WHERE id = %s) AS new_events"
                ),
                [event.pk],
            )
    return event


def report(
    wallet: Wallet,
    available: str,
    ledger: str | None = None,
    reported_at: str = "2026-11-02T12:00:00Z",
    currency: str = "NGN",
) -> ProviderBalanceReport:
    """A provider balance report, recorded through the service (as the API and the admin do)."""
    return provider_balance_record(
        wallet=wallet,
        currency=currency,
        available=Decimal(available),
        ledger=None if ledger is None else Decimal(ledger),
        reported_at=at(reported_at),
        actor=Actor.command("test"),
    )


def event_body(**overrides: Any) -> dict[str, Any]:
    """A valid ingest body (API.md's example); override any field, or drop it with the value `...`
    (None is a value a test may send)."""
    body: dict[str, Any] = {
        "event_type": "deposit",
        "amount": "1500.00",
        "currency": "NGN",
        "provider_event_id": f"fincra_evt_{uuid.uuid4().hex[:12]}",
        "occurred_at": "2026-11-20T14:02:18Z",
        "metadata": {"channel": "bank_transfer"},
    }
    body.update(overrides)
    return {key: value for key, value in body.items() if value is not ...}
