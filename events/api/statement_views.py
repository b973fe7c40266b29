"""GET /api/v1/wallets/{wallet_id}/statement: parse, call the statement selector, render."""

from __future__ import annotations

from uuid import UUID

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from amani.api.pagination import MAX_LIMIT
from amani.api.serializers import AUTH_ERRORS, error_doc
from amani.api.views import ApiView
from amani.routers import reading_from_replica
from events.api.statement_serializers import StatementParams, StatementSerializer, statement_representation
from events.statement import wallet_statement_page
from wallets.selectors import wallet_get


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
