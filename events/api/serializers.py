"""The event shapes (each renderer beside the serializer that documents it), query parameters,
and the request shapes for the OpenAPI schema.

Bodies are parsed by events.validation (one parser for the API and the backfill);
the request serializers here only describe them in the schema.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from rest_framework import serializers

from amani.api.fields import Rfc3339Field, timestamp_format
from amani.api.pagination import Page, PageParams
from amani.api.serializers import renders
from amani.errors import DomainError
from amani.money import amount_format
from events.models import EventType
from events.services import STATUSES, BatchResult

AMOUNT_HELP = (
    'A decimal string, > 0, with at most the currency\'s ISO 4217 minor-unit digits ("1500.00" for NGN, '
    '"1500" for UGX); never a JSON number.'
)


class EventListParams(PageParams):
    event_type = serializers.ChoiceField(choices=EventType.choices, required=False)
    occurred_after = Rfc3339Field(required=False, help_text="Inclusive lower bound on occurred_at (RFC 3339).")
    occurred_before = Rfc3339Field(required=False, help_text="Inclusive upper bound on occurred_at (RFC 3339).")


class EventIngestSerializer(serializers.Serializer):
    """The ingest body (documentation; parsing is events.validation.event_parse)."""

    event_id = serializers.UUIDField(required=False, help_text="Optional; becomes the event's id. A dedup key.")
    event_type = serializers.ChoiceField(choices=EventType.choices)
    amount = serializers.CharField(help_text=AMOUNT_HELP)
    currency = serializers.CharField(min_length=3, max_length=3, help_text="Upper-case ISO 4217 code.")
    provider_event_id = serializers.CharField(
        required=False, max_length=255, help_text="The provider's id for the event; with the provider, a dedup key."
    )
    occurred_at = serializers.DateTimeField(help_text="RFC 3339 with an offset; not more than 5 minutes in the future.")
    metadata = serializers.DictField(
        required=False,
        help_text="Optional; a JSON object (not null) without \\u0000, at most 1 MiB as JSON; not content.",
    )
    provider = serializers.CharField(required=False, help_text="Optional; must equal the wallet's provider.")


class EventBatchItemSerializer(EventIngestSerializer):
    wallet_id = serializers.UUIDField()
    idempotency_key = serializers.CharField(
        required=False, max_length=255, help_text="1-255 printable ASCII; the batch item's Idempotency-Key."
    )


class EventBatchSerializer(serializers.Serializer):
    events = EventBatchItemSerializer(many=True, help_text="1 to 1,000 events, decided in order.")


class EventSerializer(serializers.Serializer):
    """The event representation (documentation; rendering is event_representation)."""

    id = serializers.UUIDField(help_text="The event_id sent with the event, or one the server generated.")
    wallet_id = serializers.UUIDField()
    provider = serializers.CharField(help_text="Always the wallet's provider.")
    event_type = serializers.ChoiceField(choices=EventType.choices)
    amount = serializers.CharField(help_text="Rendered with exactly the currency's minor-unit digits.")
    currency = serializers.CharField(help_text="ISO 4217 alphabetic code, upper case.")
    provider_event_id = serializers.CharField(allow_null=True)
    metadata = serializers.DictField()
    occurred_at = serializers.DateTimeField()
    created_at = serializers.DateTimeField()


@renders(EventSerializer)
def event_representation(event: Any, *, wallet_public_id: UUID) -> dict[str, Any]:
    """The contract's event; `event` is a WalletEvent or an events.services.EventRow."""
    return {
        "id": str(event.public_id),
        "wallet_id": str(wallet_public_id),
        "provider": event.provider,
        "event_type": event.event_type,
        "amount": amount_format(event.amount, event.currency),
        "currency": event.currency,
        "provider_event_id": event.provider_event_id,
        "metadata": event.metadata,
        "occurred_at": timestamp_format(event.occurred_at),
        "created_at": timestamp_format(event.created_at),
    }


class BatchErrorSerializer(serializers.Serializer):
    code = serializers.CharField(help_text="validation_error, dedup_key_required, not_found or event_conflict.")
    message = serializers.CharField()
    fields = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()), required=False, help_text="validation_error only."
    )
    existing_event_id = serializers.UUIDField(required=False, help_text="event_conflict only.")


@renders(BatchErrorSerializer)
def error_representation(error: DomainError) -> dict[str, Any]:
    return {"code": error.code, "message": error.message, **error.extra}


class BatchItemResultSerializer(serializers.Serializer):
    index = serializers.IntegerField()
    status = serializers.ChoiceField(choices=STATUSES)
    event = EventSerializer(allow_null=True)
    error = BatchErrorSerializer(allow_null=True)


class BatchSummarySerializer(serializers.Serializer):
    created = serializers.IntegerField()
    duplicate = serializers.IntegerField()
    conflict = serializers.IntegerField()
    invalid = serializers.IntegerField()


class EventBatchResultSerializer(serializers.Serializer):
    results = BatchItemResultSerializer(many=True)
    summary = BatchSummarySerializer()


@renders(EventBatchResultSerializer)
def batch_representation(results: list[BatchResult]) -> dict[str, Any]:
    summary = dict.fromkeys(STATUSES, 0)
    rendered = []
    for result in results:
        summary[result.status] += 1
        event = result.event
        wallet_public_id = None if event is None else event.wallet_public_id
        rendered.append(
            {
                "index": result.index,
                "status": result.status,
                "event": None if event is None else event_representation(event, wallet_public_id=wallet_public_id),
                "error": None if result.error is None else error_representation(result.error),
            }
        )
    return {"results": rendered, "summary": summary}


class EventPageSerializer(serializers.Serializer):
    results = EventSerializer(many=True)
    next_cursor = serializers.CharField(allow_null=True)


@renders(EventPageSerializer)
def event_page_representation(page: Page, *, wallet_public_id: UUID) -> dict[str, Any]:
    results = [event_representation(event, wallet_public_id=wallet_public_id) for event in page.results]
    return {"results": results, "next_cursor": page.next_cursor}
