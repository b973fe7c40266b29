"""GET /api/v1/wallets/{wallet_id}/statement: parse, call the statement selector, render."""

from __future__ import annotations

import re
from typing import Any
from uuid import UUID

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from amani.api.pagination import MAX_LIMIT, PageParams
from amani.api.serializers import AUTH_ERRORS, error_doc
from amani.api.views import ApiView
from amani.money import amount_format
from amani.routers import reading_from_replica
from events.api.balance_views import CurrencyField
from events.api.serializers import EventSerializer, Rfc3339Field, event_representation, timestamp_format
from events.statement import Balance, StatementPage, wallet_statement_page
from wallets.selectors import wallet_get

# An unencoded "+01:00" in a query string arrives as " 01:00"; read it as the sign it was.
_SPACE_FOR_PLUS = re.compile(r" (\d{2}:\d{2})$")


class StatementParams(PageParams):
    currency = CurrencyField()

    def get_fields(self) -> dict[str, serializers.Field]:
        fields = super().get_fields()
        # `from` is a Python keyword: declared here rather than as a class attribute.
        fields["from"] = Rfc3339Field(required=False)
        fields["to"] = Rfc3339Field(required=False)
        return fields

    def to_internal_value(self, data: Any) -> dict[str, Any]:
        data = {
            name: _SPACE_FOR_PLUS.sub(r"+\1", value) if name in ("from", "to") and isinstance(value, str) else value
            for name, value in data.items()
        }
        return super().to_internal_value(data)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if "from" in attrs and "to" in attrs and attrs["from"] > attrs["to"]:
            raise serializers.ValidationError({"from": ["Must not be after `to`."]})
        return attrs


def balance_representation(balance: Balance, currency: str) -> dict[str, str]:
    return {
        "ledger": amount_format(balance.ledger, currency),
        "held": amount_format(balance.held, currency),
        "available": amount_format(balance.available, currency),
    }


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


class StatementBalanceSerializer(serializers.Serializer):
    """Documentation only: balance_representation renders it."""

    ledger = serializers.CharField()
    held = serializers.CharField()
    available = serializers.CharField()


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


class WalletStatementView(ApiView):
    required_scopes = {"GET": "events:read"}

    @extend_schema(
        operation_id="wallet_statement",
        summary="A wallet's statement in one currency over a period",
        description="Entries oldest first (occurred_at ascending, ties oldest-recorded first), each with the "
        "balances right after it. `opening` is the balance over the events before `from`, `closing` the balance "
        "as of `to`, the same on every page; the last entry of the last page carries exactly `closing`. Keyset "
        "pagination: pass `next_cursor` back as `cursor` with the same parameters. Page 1,000 costs about what "
        "page 1 costs.",
        parameters=[
            OpenApiParameter("currency", OpenApiTypes.STR, required=True, description="ISO 4217 code, upper case."),
            OpenApiParameter(
                "from", OpenApiTypes.DATETIME, description="Inclusive, RFC 3339; default the first event."
            ),
            OpenApiParameter("to", OpenApiTypes.DATETIME, description="Inclusive, RFC 3339; default now."),
            OpenApiParameter("limit", OpenApiTypes.INT, description=f"1..{MAX_LIMIT}, default 100."),
            OpenApiParameter("cursor", OpenApiTypes.STR, description="`next_cursor` of the previous page."),
        ],
        responses={
            200: StatementSerializer,
            400: error_doc(
                "validation_error: a missing or unknown currency, a malformed or naive timestamp, `from` after "
                "`to`, a limit out of range, or a cursor this server did not issue for these parameters."
            ),
            404: error_doc("not_found: no wallet has this id (or the id is not a UUID)."),
            **AUTH_ERRORS,
        },
    )
    @reading_from_replica()
    def get(self, request: Request, wallet_id: UUID) -> Response:
        wallet = wallet_get(public_id=wallet_id)
        params = StatementParams(data={name: value for name, value in request.query_params.items() if value != ""})
        params.is_valid(raise_exception=True)
        query = params.validated_data
        try:
            page = wallet_statement_page(
                wallet=wallet,
                currency=query["currency"],
                period_from=query.get("from"),
                period_to=query.get("to"),
                limit=query["limit"],
                cursor=query.get("cursor"),
            )
        except ValueError as exc:  # `from` after the default `to` (now)
            raise serializers.ValidationError({"from": [str(exc)]}) from None
        return Response(statement_representation(page))
