"""Request-wide plumbing: request ids, body size limits, the envelope for crashes."""

from __future__ import annotations

import io
import logging
import re
import uuid
from collections.abc import Callable

from django.conf import settings
from django.contrib.auth import middleware as auth_middleware
from django.contrib.messages import middleware as message_middleware
from django.contrib.sessions import middleware as session_middleware
from django.http import HttpRequest, HttpResponse

from amani.api.errors import error_response

logger = logging.getLogger("amani.api")
_REQUEST_ID_RE = re.compile(r"[A-Za-z0-9._:-]{1,128}")


class RequestIdMiddleware:
    """Accept `X-Request-ID` from the caller (or make one) and return it."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        given = request.META.get("HTTP_X_REQUEST_ID", "")
        request.request_id = given if _REQUEST_ID_RE.fullmatch(given) else uuid.uuid4().hex
        response = self.get_response(request)
        response["X-Request-ID"] = request.request_id
        return response


class BodySizeLimitMiddleware:
    """413 before the body is read: 1 MiB, 16 MiB on the batch endpoint."""

    batch_path = "/api/v1/events/batch"

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        limit = settings.API_MAX_BATCH_BODY_BYTES if request.path == self.batch_path else settings.API_MAX_BODY_BYTES
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if length > limit:
            return error_response(413, "payload_too_large", f"The request body is over {limit} bytes.")
        if not length and "chunked" in request.META.get("HTTP_TRANSFER_ENCODING", "").lower():
            # Django reads no body without Content-Length, so a chunked body would look empty
            # (and its signature wrong). gunicorn de-chunks it: read it here, within the limit.
            body = request.META["wsgi.input"].read(limit + 1)
            if len(body) > limit:
                return error_response(413, "payload_too_large", f"The request body is over {limit} bytes.")
            request._stream = io.BytesIO(body)
            request.META["CONTENT_LENGTH"] = str(len(body))
        return self.get_response(request)


class ApiExceptionMiddleware:
    """An exception escaping a view under /api/ becomes `500 internal_error`.

    DRF views already answer through amani.api.errors.exception_handler, and
    `handler500` covers the rest when DEBUG is off; this keeps API callers on the
    envelope even with DEBUG on, where Django would render its HTML debug page.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not request.path.startswith("/api/"):
            return None
        logger.error("unhandled error", exc_info=exception, extra={"request_id": getattr(request, "request_id", "")})
        return error_response(500, "internal_error", "An unexpected error occurred; it has been logged.")


# --- Browser-only contrib middleware, kept off /api/ --------------------------------------------
# Signed API callers carry no session or cookie, and DRF sets request.user itself; sessions, auth
# and messages serve the admin only. Under /api/ they cost most of the 0.22-0.31 ms a request that
# the contrib middleware took (PROFILE.md), so these subclasses pass API requests straight through.
# They are subclasses so that the admin's system checks still find them in MIDDLEWARE. CSRF stays
# Django's own (`check --deploy` looks for it by name); DRF's views are exempt from it already.
API_PREFIX = "/api/"


class _BrowserOnly:
    get_response: Callable[[HttpRequest], HttpResponse]

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path_info.startswith(API_PREFIX):
            return self.get_response(request)
        return super().__call__(request)


class SessionMiddleware(_BrowserOnly, session_middleware.SessionMiddleware):
    pass


class AuthenticationMiddleware(_BrowserOnly, auth_middleware.AuthenticationMiddleware):
    pass


class MessageMiddleware(_BrowserOnly, message_middleware.MessageMiddleware):
    pass
