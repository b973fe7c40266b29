"""The statement's parameters and body, the renderer beside the serializer that documents it."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from amani.api.fields import Rfc3339Field, timestamp_format
from amani.api.pagination import PageParams
from amani.api.serializers import renders
from amani.money import amount_format
from events.api.balance_serializers import CurrencyField
from events.api.serializers import EventSerializer, event_representation
from events.statement import Balance, StatementPage


class StatementParams(PageParams):
    currency = CurrencyField()

    def get_fields(self) -> dict[str, serializers.Field]:
        fields = super().get_fields()
        # `from` is a Python keyword: declared here rather than as a class attribute.
        fields["from"] = Rfc3339Field(required=False, in_query=True)
        fields["to"] = Rfc3339Field(required=False, in_query=True)
        return fields

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if "from" in attrs and "to" in attrs and attrs["from"] > attrs["to"]:
            raise serializers.ValidationError({"from": ["Must not be after `to`."]})
        return attrs


class StatementBalanceSerializer(serializers.Serializer):
    """Documentation only: balance_representation renders it."""

    ledger = serializers.CharField()
    held = serializers.CharField()
    available = serializers.CharField()


@renders(StatementBalanceSerializer)
def balance_representation(balance: Balance, currency: str) -> dict[str, str]:
    return {
        "ledger": amount_format(balance.ledger, currency),
        "held": amount_format(balance.held, currency),
        "available": amount_format(balance.available, currency),
    }


class StatementEntrySerializer(StatementBalanceSerializer):
    """An event and the balances right after it."""

    event = EventSerializer()


class StatementSerializer(serializers.Serializer):
    """Documentation only: statement_representation renders it."""

    wallet_id = serializers.UUIDField()
    currency = serializers.CharField()
    opening = StatementBalanceSerializer(help_text="Over the events before `from`.")
    closing = StatementBalanceSerializer(help_text="As of `to`; the same on every page.")
    entries = StatementEntrySerializer(many=True)
    next_cursor = serializers.CharField(allow_null=True)

    def get_fields(self) -> dict[str, serializers.Field]:
        fields = super().get_fields()
        fields["from"] = serializers.DateTimeField(
            allow_null=True, help_text="The period's start: the first event's time when not given (null: none)."
        )
        fields["to"] = serializers.DateTimeField(help_text="The period's end: the first page's time when not given.")
        return fields


@renders(StatementSerializer)
def statement_representation(page: StatementPage) -> dict[str, Any]:
    currency, wallet_public_id = page.currency, page.wallet.public_id
    return {
        "wallet_id": str(wallet_public_id),
        "currency": currency,
        "from": None if page.period_from is None else timestamp_format(page.period_from),
        "to": timestamp_format(page.period_to),
        "opening": balance_representation(page.opening, currency),
        "closing": balance_representation(page.closing, currency),
        "entries": [
            {
                "event": event_representation(entry.event, wallet_public_id=wallet_public_id),
                **balance_representation(entry.balance, currency),
            }
            for entry in page.entries
        ],
        "next_cursor": page.next_cursor,
    }
