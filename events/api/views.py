"""Event endpoints: parse, call one service or selector, render."""

from __future__ import annotations

from uuid import UUID

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response

from amani.api.idempotency import IDEMPOTENCY_KEY_HEADER, REPLAYED_HEADER, idempotency_parameters
from amani.api.serializers import AUTH_ERRORS, error_doc
from amani.api.views import ApiView
from amani.routers import reading_from_replica
from events.api.serializers import (
    EventBatchResultSerializer,
    EventBatchSerializer,
    EventIngestSerializer,
    EventListParams,
    EventPageSerializer,
    EventSerializer,
    batch_representation,
    event_page_representation,
    event_representation,
)
from events.selectors import wallet_event_list
from events.services import event_ingest, event_ingest_batch, event_ingest_parse
from events.validation import EventInvalid
from wallets.selectors import wallet_get

WALLET_NOT_FOUND = error_doc("not_found: no wallet has this id (or the id is not a UUID).")


class EventIngestView(ApiView):
    required_scopes = {"POST": "events:write"}

    @extend_schema(
        operation_id="events_ingest",
        summary="Record a wallet event, idempotently",
        description="An earlier event matches by event_id, by provider + provider_event_id, or by Idempotency-Key. "
        "Same content (wallet, event_type, amount value, currency, occurred_at instant, provider_event_id; "
        "metadata is not content): a replay (200). Different content: 409 event_conflict with existing_event_id. "
        "At least one of the three keys is required. Racing identical requests leave exactly one event.",
        request=EventIngestSerializer,
        parameters=idempotency_parameters(
            key="1-255 printable ASCII characters; a dedup key (events namespace).",
            replayed="`true` when the event was already recorded (idempotent replay).",
        ),
        responses={
            201: OpenApiResponse(EventSerializer, description="A new event."),
            200: OpenApiResponse(EventSerializer, description="Replay: the earlier event with the same content."),
            400: error_doc(
                "validation_error (fields names each bad field, or the Idempotency-Key header), "
                "dedup_key_required, or invalid_json."
            ),
            404: WALLET_NOT_FOUND,
            409: error_doc(
                "event_conflict: an earlier event shares a dedup key but not the content; "
                "the error carries existing_event_id."
            ),
            415: error_doc("unsupported_media_type: the body is not application/json."),
            **AUTH_ERRORS,
        },
    )
    def post(self, request: Request, wallet_id: UUID) -> Response:
        item = event_ingest_parse(
            self.json_object(request), idempotency_key=request.headers.get(IDEMPOTENCY_KEY_HEADER)
        )
        ingestion = event_ingest(wallet_id=wallet_id, item=item, actor=self.actor(request))
        data = event_representation(ingestion.event, wallet_public_id=ingestion.event.wallet_public_id)
        if ingestion.created:
            return Response(data, status=status.HTTP_201_CREATED)
        return Response(data, status=status.HTTP_200_OK, headers={REPLAYED_HEADER: "true"})


class WalletEventListView(ApiView):
    required_scopes = {"GET": "events:read"}

    @extend_schema(
        operation_id="events_list",
        summary="A wallet's events, latest occurrence first",
        description="Ordered by occurred_at descending, ties newest-recorded first. Keyset pagination: pass "
        "`next_cursor` back as `cursor` with the same filters. Bounds are inclusive. An empty filter value is "
        "the same as leaving the filter out.",
        parameters=[EventListParams],
        responses={
            200: EventPageSerializer,
            400: error_doc("validation_error: a bad filter, limit or cursor (fields names it)."),
            404: WALLET_NOT_FOUND,
            **AUTH_ERRORS,
        },
    )
    @reading_from_replica()
    def get(self, request: Request, wallet_id: UUID) -> Response:
        wallet = wallet_get(public_id=wallet_id)
        params = EventListParams(data={name: value for name, value in request.query_params.items() if value != ""})
        params.is_valid(raise_exception=True)
        page = wallet_event_list(wallet=wallet, **params.validated_data)
        return Response(event_page_representation(page, wallet_public_id=wallet.public_id))


class EventBatchView(ApiView):
    required_scopes = {"POST": "events:write"}

    @extend_schema(
        operation_id="events_batch",
        summary="Record up to 1,000 events across wallets",
        description="Each item is decided in order exactly as a single ingest would decide it: created, "
        "duplicate (a replay, also of an earlier item of the same batch), conflict (with existing_event_id) or "
        "invalid (validation_error naming the field, dedup_key_required, or not_found for an unknown wallet). "
        "One bad item never loses the others. The body may be up to 16 MiB.",
        request=EventBatchSerializer,
        responses={
            200: EventBatchResultSerializer,
            400: error_doc(
                'validation_error: the body is not {"events": [...]} with 1 to 1,000 items; or invalid_json.'
            ),
            413: error_doc("payload_too_large: over 16 MiB."),
            415: error_doc("unsupported_media_type: the body is not application/json."),
            **AUTH_ERRORS,
        },
    )
    def post(self, request: Request) -> Response:
        body = self.json_object(request)
        if "events" not in body:
            raise EventInvalid({"events": ["This field is required."]})
        results = event_ingest_batch(items=body["events"], actor=self.actor(request))
        return Response(batch_representation(results))
