"""Balances, provider balance reports and reconciliation: their parameters and bodies, each
renderer beside the serializer that documents its shape."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any
from uuid import UUID

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from amani.api.fields import Rfc3339Field, timestamp_format
from amani.api.serializers import renders
from amani.money import MoneyError, amount_format, amount_parse, currency_exponent
from events.balances import CurrencyBalance
from events.models import ProviderBalanceReport
from events.reconciliation import DRIFT, MATCHED, Reconciliation


class CurrencyField(serializers.CharField):
    def to_internal_value(self, data: Any) -> str:
        code = super().to_internal_value(data)
        try:
            currency_exponent(code)
        except MoneyError as exc:
            raise serializers.ValidationError(str(exc)) from None
        return code


class BalanceQuery(serializers.Serializer):
    as_of = Rfc3339Field(required=False, in_query=True)


@extend_schema_field({"type": "string", "pattern": r"^-?(0|[1-9][0-9]{0,17})(\.[0-9]+)?$"})
class AmountField(serializers.JSONField):
    """The raw JSON value: amount_parse refuses numbers, so it must not be coerced to text first."""


class ProviderBalanceInput(serializers.Serializer):
    currency = CurrencyField()
    available = AmountField()
    ledger = AmountField(required=False, allow_null=True)
    reported_at = Rfc3339Field(past=True)

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
    return None if value is None else timestamp_format(value)


class CurrencyBalanceSerializer(serializers.Serializer):
    """Documentation only: balance_body renders it."""

    currency = serializers.CharField()
    ledger = serializers.CharField()
    held = serializers.CharField()
    available = serializers.CharField()
    event_count = serializers.IntegerField()
    last_event_at = serializers.DateTimeField(allow_null=True)


@renders(CurrencyBalanceSerializer)
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


class WalletBalancesSerializer(serializers.Serializer):
    wallet_id = serializers.UUIDField()
    as_of = serializers.DateTimeField()
    balances = CurrencyBalanceSerializer(many=True)


@renders(WalletBalancesSerializer)
def wallet_balances_body(
    *, wallet_public_id: UUID, as_of: dt.datetime, balances: list[CurrencyBalance]
) -> dict[str, Any]:
    return {
        "wallet_id": str(wallet_public_id),
        "as_of": _when(as_of),
        "balances": [balance_body(balance) for balance in balances],
    }


class ProviderBalanceReportSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    wallet_id = serializers.UUIDField()
    currency = serializers.CharField()
    available = serializers.CharField()
    ledger = serializers.CharField(allow_null=True)
    reported_at = serializers.DateTimeField()
    created_at = serializers.DateTimeField()


@renders(ProviderBalanceReportSerializer)
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


class ReportedBalanceSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    available = serializers.CharField()
    ledger = serializers.CharField(allow_null=True)
    created_at = serializers.DateTimeField()


class BalanceDifferenceSerializer(serializers.Serializer):
    available = serializers.CharField()
    ledger = serializers.CharField(allow_null=True)


class ReconciliationSerializer(serializers.Serializer):
    wallet_id = serializers.UUIDField()
    currency = serializers.CharField()
    reported_at = serializers.DateTimeField()
    reported = ReportedBalanceSerializer()
    reconstructed = CurrencyBalanceSerializer()
    status = serializers.ChoiceField(choices=[MATCHED, DRIFT])
    difference = BalanceDifferenceSerializer()


@renders(ReconciliationSerializer)
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
