"""Serializers shared by every app's API: the error envelope, for the OpenAPI document; `renders`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers

Renderer = TypeVar("Renderer", bound=Callable[..., dict[str, Any]])

# Each fast dict renderer and the serializer that documents its shape (amani/tests/test_response_shapes.py).
RENDERED_SHAPES: dict[Callable[..., dict[str, Any]], type[serializers.Serializer]] = {}


def renders(serializer: type[serializers.Serializer]) -> Callable[[Renderer], Renderer]:
    """Pair a renderer with the serializer that documents its shape; the renderer is returned unchanged.

    The hot paths render plain dicts, cheaper than a DRF serializer per object; the OpenAPI
    document describes the serializer; a test holds the two to the same keys.
    """

    def register(renderer: Renderer) -> Renderer:
        RENDERED_SHAPES[renderer] = serializer
        return renderer

    return register


class ErrorDetailSerializer(serializers.Serializer):
    code = serializers.CharField()
    message = serializers.CharField()
    fields = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()),
        required=False,
        help_text="On validation_error only: each offending field (or header) and its messages.",
    )


class ErrorEnvelopeSerializer(serializers.Serializer):
    """{"error": {"code", "message", "fields"?}}: every error response (amani.api.errors)."""

    error = ErrorDetailSerializer()


def error_doc(description: str) -> OpenApiResponse:
    """An error response in the OpenAPI document: the envelope, with what its codes mean here."""
    return OpenApiResponse(ErrorEnvelopeSerializer, description=description)


AUTH_ERRORS = {
    401: error_doc("Missing or invalid HMAC signature (missing_credentials, bad_signature, …)."),
    403: error_doc("insufficient_scope: the client lacks the scope this endpoint needs."),
    429: error_doc("throttled, with Retry-After."),
}
