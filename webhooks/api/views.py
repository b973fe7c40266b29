"""`POST /api/v1/webhooks/{provider}`: verify with the provider's scheme, store, decide, answer 200."""

from __future__ import annotations

from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from amani.api.errors import InvalidJson
from amani.api.serializers import error_doc
from amani.errors import NotFound
from webhooks import metrics
from webhooks.api.serializers import WebhookReceiptSerializer, receipt_representation
from webhooks.providers import provider_enabled, provider_secrets
from webhooks.providers.base import payload_parse
from webhooks.services import webhook_actor, webhook_receive


class BadSignature(exceptions.AuthenticationFailed):
    default_code = "bad_signature"
    default_detail = "The provider's signature is missing or does not match."


class WebhookView(APIView):
    """Unauthenticated by the HMAC scheme: the provider's signature is checked here, over the raw body."""

    authentication_classes: list = []
    permission_classes: list = []
    throttle_classes: list = []
    parser_classes: list = []  # the raw body is what is signed and stored
    http_method_names = ["post"]

    def get_authenticate_header(self, request: Request) -> str:
        # A 401 must name a challenge (RFC 9110); here it names the header the provider signs with.
        return f'Webhook-Signature header="{getattr(self, "signature_header", "")}"'

    @extend_schema(
        operation_id="webhooks_receive",
        summary="Receive a provider's webhook (paystack, flutterwave, fincra)",
        description="Signed by the provider, not with the HMAC scheme: Paystack `X-Paystack-Signature`, "
        "Flutterwave `verif-hash` or `flutterwave-signature`, Fincra `signature` (API.md, Provider webhooks). "
        "Every verified delivery is stored and answered 200 with its outcome, so the provider stops retrying; "
        "money movements become events through the ingest decision, deduplicated by the provider's reference.",
        auth=[],
        request={"application/json": OpenApiTypes.OBJECT},
        responses={
            200: WebhookReceiptSerializer,
            400: error_doc("invalid_json: the verified body is not a JSON object."),
            401: error_doc("bad_signature: the signature header is missing or wrong; nothing is stored."),
            404: error_doc("not_found: no such provider, or no secret is configured for it."),
            405: error_doc("method_not_allowed: only POST."),
            413: error_doc("payload_too_large: over 1 MiB."),
        },
    )
    def post(self, request: Request, provider: str) -> Response:
        received_at = timezone.now()
        module = provider_enabled(provider)
        if module is None:
            raise NotFound("No webhook receiver is configured for this provider.")
        body = request._request.body
        self.signature_header = module.SIGNATURE_HEADER
        if not module.verify(headers=request.headers, body=body, secrets=provider_secrets(module)):
            metrics.webhook_verification_failure_observe(provider=module.NAME)
            raise BadSignature()
        try:
            payload = payload_parse(body)
        except ValueError:
            raise InvalidJson() from None
        if not isinstance(payload, dict):
            raise InvalidJson()
        receipt = webhook_receive(
            module=module,
            body=body,
            payload=payload,
            received_at=received_at,
            actor=webhook_actor(module.NAME, getattr(request._request, "request_id", "")),
        )
        metrics.webhook_delivery_observe(provider=module.NAME, outcome=receipt.outcome)
        response = Response(receipt_representation(receipt))
        response.outcome = receipt.outcome  # the access log's outcome (amani.logging)
        return response
