"""Balances, provider balance reports and reconciliation: parse, call one selector or service, render."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from typing import Any
from uuid import UUID

from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field, inline_serializer
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from amani.api.views import ApiView
from amani.errors import NotFound
from amani.money import MoneyError, amount_format, amount_parse, currency_exponent
from amani.routers import reading_from_replica
from events.api.serializers import Rfc3339Field
from events.balances import CurrencyBalance, wallet_balances
from events.models import ProviderBalanceReport
from events.reconciliation import Reconciliation, provider_balance_record, reconciliation_get
from wallets.selectors import wallet_get

# A provider's clock may run a little ahead of ours; further ahead is a mistake.
MAX_FUTURE = dt.timedelta(minutes=5)
_datetime_field = serializers.DateTimeField()


class CurrencyField(serializers.CharField):
    def to_internal_value(self, data: Any) -> str:
        code = super().to_internal_value(data)
        try:
            currency_exponent(code)
        except MoneyError as exc:
            raise serializers.ValidationError(str(exc)) from None
        return code


class BalanceQuery(serializers.Serializer):
    as_of = Rfc3339Field(required=False)

    def to_internal_value(self, data: Any) -> dict[str, Any]:
        # An unencoded "+01:00" in a query string arrives as " 01:00"; read it as the sign it was.
        as_of = data.get("as_of")
        if isinstance(as_of, str) and re.search(r" \d{2}:\d{2}$", as_of):
            data = {**data, "as_of": as_of[:-6] + "+" + as_of[-5:]}
        return super().to_internal_value(data)


@extend_schema_field({"type": "string", "pattern": r"^-?(0|[1-9][0-9]{0,17})(\.[0-9]+)?$"})
class AmountField(serializers.JSONField):
    """The raw JSON value: amount_parse refuses numbers, so it must not be coerced to text first."""


class ProviderBalanceInput(serializers.Serializer):
    currency = CurrencyField()
    available = AmountField()
    ledger = AmountField(required=False, allow_null=True)
    reported_at = Rfc3339Field()

    def validate_reported_at(self, value: dt.datetime) -> dt.datetime:
        if value > timezone.now() + MAX_FUTURE:
            raise serializers.ValidationError("Must not be more than 5 minutes in the future.")
        return value

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        errors: dict[str, list[str]] = {}
        for name in ("available", "ledger"):
            if attrs.get(name) is None:
                continue
            try:
                attrs[name] = amount_parse(attrs[name], attrs["currency"], signed=True)
            except MoneyError as exc:
                errors[name] = [str(exc)]
        if errors:
            raise serializers.ValidationError(errors)
        return attrs


class ReconciliationQuery(serializers.Serializer):
    currency = CurrencyField()


def _money(value: Decimal | None, currency: str) -> str | None:
    return None if value is None else amount_format(value, currency)


def _when(value: dt.datetime | None) -> str | None:
    return None if value is None else _datetime_field.to_representation(value)


def balance_body(balance: CurrencyBalance) -> dict[str, Any]:
    currency = balance.currency
    return {
        "currency": currency,
        "ledger": _money(balance.ledger, currency),
        "held": _money(balance.held, currency),
        "available": _money(balance.available, currency),
        "event_count": balance.event_count,
        "last_event_at": _when(balance.last_event_at),
    }


def report_body(report: ProviderBalanceReport) -> dict[str, Any]:
    return {
        "id": str(report.public_id),
        "wallet_id": str(report.wallet.public_id),
        "currency": report.currency,
        "available": _money(report.available, report.currency),
        "ledger": _money(report.ledger, report.currency),
        "reported_at": _when(report.reported_at),
        "created_at": _when(report.created_at),
    }


def reconciliation_body(reconciliation: Reconciliation) -> dict[str, Any]:
    currency = reconciliation.currency
    return {
        "wallet_id": str(reconciliation.wallet_id),
        "currency": currency,
        "reported_at": _when(reconciliation.reported_at),
        "reported": {
            "id": str(reconciliation.report_id),
            "available": _money(reconciliation.reported_available, currency),
            "ledger": _money(reconciliation.reported_ledger, currency),
            "created_at": _when(reconciliation.report_created_at),
        },
        "reconstructed": balance_body(reconciliation.reconstructed),
        "status": reconciliation.status,
        "difference": {
            "available": _money(reconciliation.difference_available, currency),
            "ledger": _money(reconciliation.difference_ledger, currency),
        },
    }


class CurrencyBalanceSerializer(serializers.Serializer):
    """Documentation only: balance_body renders it."""

    currency = serializers.CharField()
    ledger = serializers.CharField()
    held = serializers.CharField()
    available = serializers.CharField()
    event_count = serializers.IntegerField()
    last_event_at = serializers.DateTimeField(allow_null=True)


class WalletBalanceView(ApiView):
    required_scopes = {"GET": "events:read"}

    @extend_schema(
        operation_id="wallet_balance",
        summary="Balances per currency, reconstructed from the events at an instant",
        description="Over the events with occurred_at <= as_of: ledger = deposit + transfer_in + refund - "
        "withdrawal - transfer_out - fee; held = hold - release; available = ledger - held. One entry per "
        "currency with an event at or before as_of; none before the first event.",
        parameters=[OpenApiParameter("as_of", OpenApiTypes.DATETIME, description="RFC 3339 with offset; default now")],
        responses=inline_serializer(
            "WalletBalances",
            {
                "wallet_id": serializers.UUIDField(),
                "as_of": serializers.DateTimeField(),
                "balances": CurrencyBalanceSerializer(many=True),
            },
        ),
    )
    @reading_from_replica()
    def get(self, request: Request, wallet_id: UUID) -> Response:
        wallet = wallet_get(public_id=wallet_id)
        query = BalanceQuery(data=request.query_params.dict())
        query.is_valid(raise_exception=True)
        as_of = query.validated_data.get("as_of") or timezone.now()
        balances = wallet_balances(wallet=wallet, as_of=as_of)
        return Response(
            {
                "wallet_id": str(wallet.public_id),
                "as_of": _when(as_of),
                "balances": [balance_body(balance) for balance in balances],
            }
        )


class ProviderBalanceView(ApiView):
    required_scopes = {"POST": "events:write"}

    @extend_schema(
        operation_id="provider_balance_record",
        summary="Record a balance the provider reported",
        description="Stored as reported; the reconciliation compares the latest report with the balance "
        "reconstructed as of its reported_at.",
        request=ProviderBalanceInput,
        responses={
            201: inline_serializer(
                "ProviderBalanceReport",
                {
                    "id": serializers.UUIDField(),
                    "wallet_id": serializers.UUIDField(),
                    "currency": serializers.CharField(),
                    "available": serializers.CharField(),
                    "ledger": serializers.CharField(allow_null=True),
                    "reported_at": serializers.DateTimeField(),
                    "created_at": serializers.DateTimeField(),
                },
            )
        },
    )
    def post(self, request: Request, wallet_id: UUID) -> Response:
        wallet = wallet_get(public_id=wallet_id)
        body = ProviderBalanceInput(data=self.json_object(request))
        body.is_valid(raise_exception=True)
        report = provider_balance_record(wallet=wallet, **body.validated_data, actor=self.actor(request))
        return Response(report_body(report), status=status.HTTP_201_CREATED)


class ReconciliationView(ApiView):
    required_scopes = {"GET": "events:read"}

    @extend_schema(
        operation_id="wallet_reconciliation",
        summary="The latest provider report against the reconstructed balance",
        description="The report with the greatest reported_at, against the balance reconstructed as of it; "
        "each difference is reported - reconstructed. 404 not_found when there is no report in that currency.",
        parameters=[OpenApiParameter("currency", OpenApiTypes.STR, required=True)],
        responses=inline_serializer(
            "Reconciliation",
            {
                "wallet_id": serializers.UUIDField(),
                "currency": serializers.CharField(),
                "reported_at": serializers.DateTimeField(),
                "reported": inline_serializer(
                    "ReportedBalance",
                    {
                        "id": serializers.UUIDField(),
                        "available": serializers.CharField(),
                        "ledger": serializers.CharField(allow_null=True),
                        "created_at": serializers.DateTimeField(),
                    },
                ),
                "reconstructed": CurrencyBalanceSerializer(),
                "status": serializers.ChoiceField(choices=["matched", "drift"]),
                "difference": inline_serializer(
                    "BalanceDifference",
                    {"available": serializers.CharField(), "ledger": serializers.CharField(allow_null=True)},
                ),
            },
        ),
    )
    @reading_from_replica()
    def get(self, request: Request, wallet_id: UUID) -> Response:
        wallet = wallet_get(public_id=wallet_id)
        query = ReconciliationQuery(data=request.query_params.dict())
        query.is_valid(raise_exception=True)
        reconciliation = reconciliation_get(wallet=wallet, currency=query.validated_data["currency"])
        if reconciliation is None:
            raise NotFound("This wallet has no provider balance report in this currency.")
        return Response(reconciliation_body(reconciliation))
