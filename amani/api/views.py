"""The base class of every API view: JSON bodies only, scopes per method."""

from __future__ import annotations

from typing import Any

from rest_framework.exceptions import UnsupportedMediaType
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.renderers import BaseRenderer
from rest_framework.request import Request
from rest_framework.views import APIView

from amani.actors import Actor
from amani.api.errors import InvalidJson

BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


class JsonNegotiation(DefaultContentNegotiation):
    """Every API endpoint answers JSON, whatever the Accept header says.

    The contract has one representation, and the error envelope is JSON too; parsing
    and matching the Accept header on every request cost 0.11 ms (PROFILE.md). Parsers
    are still chosen by DRF from the Content-Type (ApiView.initial answers 415 first).
    """

    def select_renderer(self, request: Request, renderers: list[BaseRenderer], format_suffix: str | None = None):
        renderer = renderers[0]
        return renderer, renderer.media_type


class ApiView(APIView):
    """Subclasses set `required_scopes = {"GET": "wallets:read", ...}`."""

    content_negotiation_class = JsonNegotiation

    required_scopes: dict[str, str] = {}
    # No OPTIONS: callers learn an endpoint's shape from /api/v1/schema, not per request.
    http_method_names = ["get", "post", "put", "patch", "delete", "head"]

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)  # authentication, scopes, throttles
        if request.method in BODY_METHODS:
            content_type = request.content_type.split(";", 1)[0].strip().lower()
            if content_type != "application/json":
                raise UnsupportedMediaType(content_type or "(none)")

    @staticmethod
    def json_object(request: Request) -> dict[str, Any]:
        """The parsed body, which must be a JSON object (an empty body is not one)."""
        if not request._request.body or not isinstance(request.data, dict):
            raise InvalidJson()
        return request.data

    @staticmethod
    def actor(request: Request) -> Actor:
        return Actor.api_key(request.auth.key_id, getattr(request._request, "request_id", ""))
