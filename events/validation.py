"""The one parser of event input: single ingest bodies, batch items and backfill records.

Plain Python on purpose: the backfill runs it on millions of records, so a DRF
serializer per record would cost more than the database work. A record either
parses into an `EventInput` or raises `EventInvalid` (400 `validation_error`, with
`fields`) or `DedupKeyRequired` (400 `dedup_key_required`).

Unknown fields are ignored, as DRF serializers ignore them: callers may send the
event representation back, or extra bookkeeping, without being refused.
"""

from __future__ import annotations

import datetime as dt
import functools
import uuid
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from amani.api.fields import timestamp_future_problem, timestamp_parse, uuid_parse
from amani.api.idempotency import idempotency_key_check
from amani.errors import DomainError
from amani.json_bounds import metadata_problem, text_storable
from amani.money import MoneyError, amount_parse, currency_exponent
from events.models import EventType

EVENT_TYPES = frozenset(EventType.values)
MAX_TEXT = 255


class EventInvalid(DomainError):
    """Bad fields: 400 `validation_error` with `fields` naming each one."""

    code = "validation_error"

    def __init__(self, fields: dict[str, list[str]]) -> None:
        names = ", ".join(sorted(fields))
        detail = "; ".join(f"{name}: {' '.join(messages)}" for name, messages in sorted(fields.items()))
        super().__init__(f"Invalid field(s) {names}. {detail}", fields=fields)
        self.fields = fields


class DedupKeyRequired(DomainError):
    code = "dedup_key_required"

    def __init__(self) -> None:
        super().__init__("Send at least one deduplication key: event_id, provider_event_id or an Idempotency-Key.")


@dataclass(slots=True)
class EventInput:
    """A parsed event: every value checked and typed. `provider` is as sent (checked against the wallet later)."""

    event_type: str
    amount: Decimal
    currency: str
    occurred_at: dt.datetime
    event_id: uuid.UUID | None = None
    provider_event_id: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    provider: str | None = None
    idempotency_key: str | None = None
    wallet_id: uuid.UUID | None = None

    def dedup_key_require(self) -> None:
        """At least one of event_id, provider_event_id and the idempotency key (API.md)."""
        if self.event_id is None and self.provider_event_id is None and self.idempotency_key is None:
            raise DedupKeyRequired()


@functools.lru_cache(maxsize=4096)
def _wallet_uuid(value: str) -> uuid.UUID:
    # Exports repeat a few wallet ids millions of times: parse each once.
    return uuid_parse(value)


_ABSENT = object()


def event_parse(
    data: dict[str, Any],
    *,
    idempotency_key: object = None,
    with_wallet: bool = False,
    now: dt.datetime | None = None,
) -> EventInput:
    """Check one event record; return it parsed or raise EventInvalid / DedupKeyRequired.

    `idempotency_key` is the single endpoint's header (None when absent); batch items
    and backfill records carry it in the record (`with_wallet=True`, which also
    requires `wallet_id`).
    """
    errors: dict[str, list[str]] = {}
    get = data.get

    wallet_id = None
    if with_wallet:
        idempotency_key = get("idempotency_key")
        try:
            raw_wallet_id = get("wallet_id")
            wallet_id = _wallet_uuid(raw_wallet_id) if isinstance(raw_wallet_id, str) else uuid_parse(raw_wallet_id)
        except ValueError as exc:
            errors["wallet_id"] = [str(exc) if "wallet_id" in data else "This field is required."]
    key_field = "idempotency_key" if with_wallet else "Idempotency-Key"
    if idempotency_key is not None:
        try:
            idempotency_key_check(idempotency_key)
        except ValueError as exc:
            errors[key_field] = [str(exc)]

    event_id = get("event_id")
    if event_id is not None:
        try:
            event_id = uuid_parse(event_id)
        except ValueError as exc:
            errors["event_id"] = [str(exc)]

    event_type = get("event_type")
    if not isinstance(event_type, str) or event_type not in EVENT_TYPES:
        if event_type is None:
            errors["event_type"] = ["This field is required."]
        else:
            errors["event_type"] = [f"Must be one of {', '.join(EventType.values)}."]

    currency = get("currency")
    currency_ok = False
    if currency is None:
        errors["currency"] = ["This field is required."]
    elif not isinstance(currency, str):  # currency_exponent is cached: only hashable strings reach it
        errors["currency"] = ["Currency must be an upper-case ISO 4217 code, such as NGN."]
    else:
        try:
            currency_exponent(currency)
            currency_ok = True
        except MoneyError as exc:
            errors["currency"] = [str(exc)]

    amount = get("amount")
    if amount is None:
        errors["amount"] = ["This field is required."]
    elif currency_ok:
        try:
            amount = amount_parse(amount, currency)
        except MoneyError as exc:
            errors["amount"] = [str(exc)]
    elif not isinstance(amount, str):
        errors["amount"] = ['Amount must be a decimal string, such as "1500.00", not a JSON number.']

    provider_event_id = get("provider_event_id")
    if provider_event_id is not None and (
        not isinstance(provider_event_id, str)
        or not 1 <= len(provider_event_id) <= MAX_TEXT
        or not text_storable(provider_event_id)
    ):
        errors["provider_event_id"] = ["Must be a string of 1-255 characters without NUL."]

    occurred_at = get("occurred_at")
    if occurred_at is None:
        errors["occurred_at"] = ["This field is required."]
    else:
        try:
            occurred_at = timestamp_parse(occurred_at)
        except ValueError as exc:
            errors["occurred_at"] = [str(exc)]
        else:
            if problem := timestamp_future_problem(occurred_at, now=now):
                errors["occurred_at"] = [problem]

    metadata = get("metadata", _ABSENT)
    if metadata is _ABSENT:
        metadata = {}
    elif problem := metadata_problem(metadata):  # null too: a JSON object when the field is present
        errors["metadata"] = [problem]

    provider = get("provider")
    if provider is not None and (not isinstance(provider, str) or not provider):
        errors["provider"] = ["Must be the wallet's provider."]

    if errors:
        raise EventInvalid(errors)
    item = EventInput(
        event_id=event_id,
        event_type=event_type,
        amount=amount,
        currency=currency,
        provider_event_id=provider_event_id,
        occurred_at=occurred_at,
        metadata=metadata,
        provider=provider,
        idempotency_key=idempotency_key,
        wallet_id=wallet_id,
    )
    item.dedup_key_require()
    return item


def provider_check(item: EventInput, wallet_provider: str) -> None:
    """A `provider` sent with the event must be the wallet's."""
    if item.provider is not None and item.provider != wallet_provider:
        raise EventInvalid({"provider": [f"Must be the wallet's provider ({wallet_provider}) when sent."]})
