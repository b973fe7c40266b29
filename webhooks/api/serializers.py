"""The webhook receipt: its renderer beside the serializer that documents it."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from amani.api.serializers import renders
from webhooks.models import Outcome
from webhooks.services import Receipt


class WebhookReceiptSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=Outcome.values)
    event_id = serializers.UUIDField(allow_null=True)


@renders(WebhookReceiptSerializer)
def receipt_representation(receipt: Receipt) -> dict[str, Any]:
    return {"status": receipt.outcome, "event_id": receipt.event_id}
