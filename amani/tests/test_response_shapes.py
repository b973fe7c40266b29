"""Each fast dict renderer produces the keys of the serializer that documents it (amani.api.serializers.renders).

A field added to one and not the other would make the OpenAPI document lie; each renderer
runs here on a sample that fills every nested list, and the keys are compared at every level.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from rest_framework import serializers

import amani.urls  # noqa: F401  (imports every app's API, which registers its renderers)
from amani.api.pagination import Page
from amani.api.serializers import RENDERED_SHAPES
from events.api import balance_serializers, statement_serializers
from events.api import serializers as event_serializers
from events.balances import CurrencyBalance
from events.models import ProviderBalanceReport, WalletEvent
from events.reconciliation import DRIFT, Reconciliation
from events.services import CONFLICT, CREATED, INVALID, BatchResult, EventConflict
from events.statement import Balance, StatementEntry, StatementPage
from events.validation import EventInvalid
from history.api.serializers import head_representation
from history.models import Block
from wallets.api.serializers import wallet_page_representation
from wallets.models import Wallet
from webhooks.api.serializers import receipt_representation
from webhooks.services import Receipt

NOW = dt.datetime(2026, 11, 20, 14, 2, 18, tzinfo=dt.UTC)


def a_wallet() -> Wallet:
    return Wallet(
        public_id=uuid.uuid4(),
        user_id=uuid.uuid4(),
        provider="paystack",
        provider_account_id="acct_1",
        provider_customer_id=None,
        metadata={"tier": "gold"},
        is_active=True,
        created_at=NOW,
        updated_at=NOW,
    )


def an_event() -> WalletEvent:
    return WalletEvent(
        public_id=uuid.uuid4(),
        provider="paystack",
        event_type="deposit",
        amount=Decimal("1500"),
        currency="NGN",
        provider_event_id="ps_1",
        metadata={},
        occurred_at=NOW,
        created_at=NOW,
    )


def batch_event() -> Any:
    row = an_event()
    row.wallet_public_id = uuid.uuid4()
    return row


def currency_balance() -> CurrencyBalance:
    return CurrencyBalance(currency="NGN", ledger=Decimal(1500), held=Decimal(200), event_count=2, last_event_at=NOW)


SAMPLES: dict[Callable[..., dict[str, Any]], list[Callable[[], dict[str, Any]]]] = {
    event_serializers.event_representation: [
        lambda: event_serializers.event_representation(an_event(), wallet_public_id=uuid.uuid4())
    ],
    event_serializers.error_representation: [
        lambda: event_serializers.error_representation(EventInvalid({"amount": ["Must be a string."]})),
        lambda: event_serializers.error_representation(EventConflict("Differs.", existing_event_id=str(uuid.uuid4()))),
    ],
    event_serializers.batch_representation: [
        lambda: event_serializers.batch_representation(
            [
                BatchResult(index=0, status=CREATED, event=batch_event(), error=None),
                BatchResult(index=1, status=INVALID, event=None, error=EventInvalid({"amount": ["Required."]})),
                BatchResult(
                    index=2, status=CONFLICT, event=None, error=EventConflict("Differs.", existing_event_id="x")
                ),
            ]
        )
    ],
    event_serializers.event_page_representation: [
        lambda: event_serializers.event_page_representation(
            Page(results=[an_event()], next_cursor="c"), wallet_public_id=uuid.uuid4()
        )
    ],
    balance_serializers.balance_body: [lambda: balance_serializers.balance_body(currency_balance())],
    balance_serializers.wallet_balances_body: [
        lambda: balance_serializers.wallet_balances_body(
            wallet_public_id=uuid.uuid4(), as_of=NOW, balances=[currency_balance()]
        )
    ],
    balance_serializers.report_body: [
        lambda: balance_serializers.report_body(
            ProviderBalanceReport(
                public_id=uuid.uuid4(),
                wallet=a_wallet(),
                currency="NGN",
                available=Decimal(1300),
                ledger=None,
                reported_at=NOW,
                created_at=NOW,
            )
        )
    ],
    balance_serializers.reconciliation_body: [
        lambda: balance_serializers.reconciliation_body(
            Reconciliation(
                wallet_id=uuid.uuid4(),
                currency="NGN",
                report_id=uuid.uuid4(),
                reported_available=Decimal(1300),
                reported_ledger=Decimal(1500),
                reported_at=NOW,
                report_created_at=NOW,
                reconstructed=currency_balance(),
                status=DRIFT,
            )
        )
    ],
    statement_serializers.balance_representation: [
        lambda: statement_serializers.balance_representation(Balance(ledger=Decimal(5)), "NGN")
    ],
    statement_serializers.statement_representation: [
        lambda: statement_serializers.statement_representation(
            StatementPage(
                wallet=a_wallet(),
                currency="NGN",
                period_from=NOW,
                period_to=NOW,
                opening=Balance(),
                closing=Balance(ledger=Decimal(1500)),
                entries=[StatementEntry(event=an_event(), balance=Balance(ledger=Decimal(1500)))],
                next_cursor=None,
            )
        )
    ],
    wallet_page_representation: [lambda: wallet_page_representation(Page(results=[a_wallet()], next_cursor=None))],
    receipt_representation: [lambda: receipt_representation(Receipt(outcome="created", event_id=uuid.uuid4()))],
    head_representation: [lambda: head_representation(Block(number=1, hash="0" * 64, sealed_at=NOW, records_total=3))],
}


def shape_problems(body: Any, serializer: serializers.Serializer, path: str = "") -> list[str]:
    """Where `body` and the serializer's fields differ, at every level of nesting."""
    if not isinstance(body, dict):
        return [f"{path or 'body'}: {type(body).__name__}, not an object"]
    fields = serializer.fields
    required = {name for name, field in fields.items() if field.required}
    problems = [f"{path}{name}: rendered, not documented" for name in sorted(set(body) - set(fields))]
    problems += [f"{path}{name}: documented, not rendered" for name in sorted(required - set(body))]
    for name, field in fields.items():
        value = body.get(name)
        if value is None:
            continue
        if isinstance(field, serializers.ListSerializer) and isinstance(field.child, serializers.Serializer):
            for index, item in enumerate(value):
                problems += shape_problems(item, field.child, f"{path}{name}[{index}].")
        elif isinstance(field, serializers.Serializer):
            problems += shape_problems(value, field, f"{path}{name}.")
    return problems


def test_every_renderer_has_a_sample_here():
    assert set(RENDERED_SHAPES) == set(SAMPLES)


@pytest.mark.parametrize(
    ("renderer", "sample"),
    [
        pytest.param(renderer, sample, id=f"{renderer.__name__}-{index}")
        for renderer, samples in SAMPLES.items()
        for index, sample in enumerate(samples)
    ],
)
def test_renderer_keys_are_the_serializer_fields(renderer, sample):
    assert shape_problems(sample(), RENDERED_SHAPES[renderer]()) == []


def test_a_missing_or_extra_key_is_found():
    body = event_serializers.event_representation(an_event(), wallet_public_id=uuid.uuid4())
    body["extra"] = body.pop("currency")
    page = {"results": [body], "next_cursor": None}
    assert shape_problems(page, event_serializers.EventPageSerializer()) == [
        "results[0].extra: rendered, not documented",
        "results[0].currency: documented, not rendered",
    ]
