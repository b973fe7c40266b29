"""One error envelope for every error: {"error": {"code", "message", "fields"?, …}}."""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import InterfaceError, OperationalError
from django.http import Http404, JsonResponse
from rest_framework import exceptions, status
from rest_framework.response import Response

from amani.errors import DomainError

logger = logging.getLogger("amani.api")


class InvalidJson(exceptions.ParseError):
    default_code = "invalid_json"
    default_detail = "The request body must be a JSON object."


class InsufficientScope(exceptions.PermissionDenied):
    default_code = "insufficient_scope"
    default_detail = "This API key's client does not have the scope this endpoint needs."


class ServiceUnavailable(exceptions.APIException):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_code = "service_unavailable"
    default_detail = "The service is temporarily unavailable; retry shortly."


# The status of each domain error code (API.md); any other code is a 400.
DOMAIN_STATUSES = {
    "not_found": status.HTTP_404_NOT_FOUND,
    "wallet_claimed": status.HTTP_409_CONFLICT,
    "event_conflict": status.HTTP_409_CONFLICT,
    "idempotency_key_reused": status.HTTP_422_UNPROCESSABLE_ENTITY,
}


def domain_error_status(error: DomainError) -> int:
    """The HTTP status a domain error is answered with."""
    return DOMAIN_STATUSES.get(error.code, status.HTTP_400_BAD_REQUEST)


# DRF exception classes whose own codes differ from the contract's.
_CODES = {
    exceptions.NotAuthenticated: "missing_credentials",
    exceptions.ParseError: "invalid_json",
    exceptions.NotFound: "not_found",
    exceptions.MethodNotAllowed: "method_not_allowed",
    exceptions.UnsupportedMediaType: "unsupported_media_type",
    exceptions.Throttled: "throttled",
    exceptions.NotAcceptable: "not_acceptable",
}


def envelope(code: str, message: str, *, fields: dict | None = None, **extra: Any) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message}
    if fields is not None:
        error["fields"] = fields
    error.update(extra)
    return {"error": error}


def error_response(status_code: int, code: str, message: str, **extra: Any) -> JsonResponse:
    """The envelope as a plain Django response, for code outside DRF views."""
    return JsonResponse(envelope(code, message, **extra), status=status_code)


def _flatten(detail: Any) -> Any:
    if isinstance(detail, dict):
        return {str(key): _flatten(value) for key, value in detail.items()}
    if isinstance(detail, list):
        if all(isinstance(item, str) for item in detail):
            return [str(item) for item in detail]
        return [_flatten(item) for item in detail]
    return [str(detail)]


def validation_fields(detail: Any) -> dict[str, Any]:
    """Field name → messages; errors not tied to a field go under `non_field_errors`."""
    flat = _flatten(detail)
    return flat if isinstance(flat, dict) else {"non_field_errors": flat}


def exception_handler(exc: Exception, context: dict) -> Response | None:
    """DRF's EXCEPTION_HANDLER: every exception becomes the envelope."""
    headers: dict[str, str] = {}
    if isinstance(exc, DomainError):
        return Response(envelope(exc.code, exc.message, **exc.extra), status=domain_error_status(exc))
    if isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(exc.message_dict if hasattr(exc, "error_dict") else exc.messages)
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    elif isinstance(exc, OperationalError | InterfaceError):
        logger.warning("database unavailable", exc_info=exc)
        exc = ServiceUnavailable()
        headers["Retry-After"] = "1"

    if not isinstance(exc, exceptions.APIException):
        logger.exception("unhandled error", exc_info=exc)
        return Response(
            envelope("internal_error", "An unexpected error occurred; it has been logged."),
            status=status.HTTP_500_INTERNAL_SERVER_ERROR,
        )

    if isinstance(exc, exceptions.ValidationError):
        body = envelope("validation_error", "The request is invalid.", fields=validation_fields(exc.detail))
    else:
        code = next((c for cls, c in _CODES.items() if type(exc) is cls), None)
        if code is None:
            codes = exc.get_codes()
            code = codes if isinstance(codes, str) else exc.default_code
        body = envelope(code, str(exc.detail))
    if getattr(exc, "auth_header", None):
        headers["WWW-Authenticate"] = exc.auth_header
    if getattr(exc, "wait", None) is not None:
        headers["Retry-After"] = str(int(exc.wait) + (exc.wait % 1 > 0))
    return Response(body, status=exc.status_code, headers=headers)
