"""Wallet endpoints: parse, call one service or selector, render."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from amani.api.errors import validation_fields
from amani.api.idempotency import (
    IDEMPOTENCY_KEY_HEADER,
    IDEMPOTENCY_KEY_MESSAGE,
    REPLAYED_HEADER,
    idempotency_key_valid,
    idempotency_parameters,
)
from amani.api.pagination import keyset_page
from amani.api.serializers import AUTH_ERRORS, error_doc
from amani.api.views import ApiView
from wallets.api.serializers import (
    WalletListParams,
    WalletPageSerializer,
    WalletRegisterSerializer,
    WalletSerializer,
    wallet_page_representation,
)
from wallets.selectors import wallet_get, wallet_list
from wallets.services import wallet_register


class WalletCollectionView(ApiView):
    required_scopes = {"GET": "wallets:read", "POST": "wallets:write"}

    @extend_schema(
        operation_id="wallets_register",
        summary="Register a wallet, idempotently",
        description="Key first, then the natural key (provider, provider_account_id): however many identical "
        "requests race, one wallet row exists afterwards and every one of them gets 200 or 201 with its id.",
        request=WalletRegisterSerializer,
        parameters=[
            *idempotency_parameters(
                key="1-255 printable ASCII characters. Reused with the same user_id, provider and "
                "provider_account_id: a replay (200). Reused with others: 422 idempotency_key_reused.",
                replayed="`true` when the wallet already existed (idempotent replay).",
            ),
            OpenApiParameter(
                "Location",
                OpenApiTypes.URI,
                OpenApiParameter.HEADER,
                response=[201],
                description="The new wallet's URL.",
            ),
        ],
        responses={
            201: OpenApiResponse(WalletSerializer, description="A new wallet."),
            200: OpenApiResponse(
                WalletSerializer,
                description="Replay: the earlier wallet for this Idempotency-Key, or the existing wallet "
                "of this user_id, provider and provider_account_id.",
            ),
            400: error_doc("validation_error (fields names each bad field or header) or invalid_json."),
            409: error_doc("wallet_claimed: this provider account belongs to another user_id."),
            415: error_doc("unsupported_media_type: the body is not application/json."),
            422: error_doc("idempotency_key_reused: the key was used with another user_id/provider/account."),
            **AUTH_ERRORS,
        },
    )
    def post(self, request: Request) -> Response:
        body = self.json_object(request)
        serializer = WalletRegisterSerializer(data=body)
        errors: dict[str, Any] = {} if serializer.is_valid() else validation_fields(serializer.errors)
        idempotency_key = request.headers.get(IDEMPOTENCY_KEY_HEADER)
        if idempotency_key is not None and not idempotency_key_valid(idempotency_key):
            errors[IDEMPOTENCY_KEY_HEADER] = [IDEMPOTENCY_KEY_MESSAGE]
        if errors:
            raise serializers.ValidationError(errors)

        registration = wallet_register(
            **serializer.validated_data, idempotency_key=idempotency_key, actor=self.actor(request)
        )
        data = WalletSerializer(registration.wallet).data
        if registration.created:
            location = reverse("wallet-detail", kwargs={"wallet_id": registration.wallet.public_id})
            return Response(data, status=status.HTTP_201_CREATED, headers={"Location": location})
        return Response(data, status=status.HTTP_200_OK, headers={REPLAYED_HEADER: "true"})

    @extend_schema(
        operation_id="wallets_list",
        summary="List wallets, newest first",
        description="Keyset pagination: pass `next_cursor` back as `cursor` with the same filters. An empty "
        "filter value is the same as leaving the filter out.",
        parameters=[WalletListParams],
        responses={
            200: WalletPageSerializer,
            400: error_doc("validation_error: a bad filter, limit or cursor (fields names it)."),
            **AUTH_ERRORS,
        },
    )
    def get(self, request: Request) -> Response:
        # An empty filter (`?provider=`) means no filter, as if it were absent.
        given = {name: value for name, value in request.query_params.items() if value != ""}
        params = WalletListParams(data=given)
        params.is_valid(raise_exception=True)
        filters = {name: params.validated_data.get(name) for name in ("user_id", "provider", "is_active")}
        # The cursor is bound to the filters: replayed against others, it is a 400.
        listing = "wallets?" + "&".join(f"{name}={'' if value is None else value}" for name, value in filters.items())
        page = keyset_page(
            wallet_list(**filters),
            time_field="created_at",
            limit=params.validated_data["limit"],
            cursor=params.validated_data.get("cursor"),
            listing=listing,
        )
        return Response(wallet_page_representation(page))


class WalletDetailView(ApiView):
    required_scopes = {"GET": "wallets:read"}

    @extend_schema(
        operation_id="wallets_retrieve",
        summary="Get one wallet",
        description="The wallet with this public id.",
        responses={
            200: WalletSerializer,
            404: error_doc("not_found: no wallet has this id (or the id is not a UUID)."),
            **AUTH_ERRORS,
        },
    )
    def get(self, request: Request, wallet_id: UUID) -> Response:
        return Response(WalletSerializer(wallet_get(public_id=wallet_id)).data)
