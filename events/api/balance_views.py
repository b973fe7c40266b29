"""Balances, provider balance reports and reconciliation: parse, call one selector or service, render."""

from __future__ import annotations

from uuid import UUID

from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response

from amani.api.views import ApiView
from amani.errors import NotFound
from amani.routers import reading_from_replica
from events.api.balance_serializers import (
    BalanceQuery,
    ProviderBalanceInput,
    ProviderBalanceReportSerializer,
    ReconciliationQuery,
    ReconciliationSerializer,
    WalletBalancesSerializer,
    reconciliation_body,
    report_body,
    wallet_balances_body,
)
from events.balances import wallet_balances
from events.reconciliation import provider_balance_record, reconciliation_get
from wallets.selectors import wallet_get


class WalletBalanceView(ApiView):
    required_scopes = {"GET": "events:read"}

    @extend_schema(
        operation_id="wallet_balance",
        summary="Balances per currency, reconstructed from the events at an instant",
        description="Over the events with occurred_at <= as_of: ledger = deposit + transfer_in + refund - "
        "withdrawal - transfer_out - fee; held = hold - release; available = ledger - held. One entry per "
        "currency with an event at or before as_of; none before the first event.",
        parameters=[OpenApiParameter("as_of", OpenApiTypes.DATETIME, description="RFC 3339 with offset; default now")],
        responses=WalletBalancesSerializer,
    )
    @reading_from_replica()
    def get(self, request: Request, wallet_id: UUID) -> Response:
        wallet = wallet_get(public_id=wallet_id)
        query = BalanceQuery(data=request.query_params.dict())
        query.is_valid(raise_exception=True)
        as_of = query.validated_data.get("as_of") or timezone.now()
        balances = wallet_balances(wallet=wallet, as_of=as_of)
        return Response(wallet_balances_body(wallet_public_id=wallet.public_id, as_of=as_of, balances=balances))


class ProviderBalanceView(ApiView):
    required_scopes = {"POST": "events:write"}

    @extend_schema(
        operation_id="provider_balance_record",
        summary="Record a balance the provider reported",
        description="Stored as reported; the reconciliation compares the latest report with the balance "
        "reconstructed as of its reported_at.",
        request=ProviderBalanceInput,
        responses={201: ProviderBalanceReportSerializer},
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
        responses=ReconciliationSerializer,
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
