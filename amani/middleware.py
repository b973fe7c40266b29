"""Request-wide plumbing: request ids, body size limits, the envelope for crashes."""

from __future__ import annotations

import io
import logging
import re
import time
import uuid
from collections.abc import Callable

from django.conf import settings
from django.contrib.auth import middleware as auth_middleware
from django.contrib.messages import middleware as message_middleware
from django.contrib.sessions import middleware as session_middleware
from django.core.exceptions import BadRequest
from django.http import HttpRequest, HttpResponse
from gunicorn.http.errors import ParseException

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


def connection_close(request: HttpRequest) -> None:
    """Close the connection after this response (gunicorn's threaded worker, amani.gunicorn_worker):
    the body is unread or unreadable, so the connection cannot carry another request, and the
    response must not announce keep-alive. Other servers close such connections themselves."""
    message = getattr(request.META.get("wsgi.input"), "http_message", None)
    if message is not None:
        message.must_close = True


class BodySizeLimitMiddleware:
    """Reads every request body before the view runs: within its size limit (413 before a
    byte is read when Content-Length says so: 1 MiB, 16 MiB on the batch endpoint), and
    within API_BODY_READ_TIMEOUT_SECONDS in all (408), so a client that sends less than it
    announced, or stalls, holds a gunicorn thread for that long at most, never the worker.

    A body that cannot be read (a malformed chunk, the client gone) is 400 `invalid_json`;
    gunicorn then closes the connection, since where the next request would start is unknown.
    """

    batch_path = "/api/v1/events/batch"
    read_step = 64 * 1024

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        limit = settings.API_MAX_BATCH_BODY_BYTES if request.path == self.batch_path else settings.API_MAX_BODY_BYTES
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if length > limit:
            connection_close(request)
            return error_response(413, "payload_too_large", f"The request body is over {limit} bytes.")
        # Django reads no body without Content-Length, so a chunked body would look empty
        # (and its signature wrong); gunicorn de-chunks it and it is read here, within the limit.
        chunked = not length and "chunked" in request.META.get("HTTP_TRANSFER_ENCODING", "").lower()
        if not length and not chunked:
            return self.get_response(request)
        try:
            body = self.body_read(request.META, expected=length or limit + 1)
        except TimeoutError:
            connection_close(request)
            timeout = settings.API_BODY_READ_TIMEOUT_SECONDS
            return error_response(408, "request_timeout", f"The request body did not arrive within {timeout} s.")
        except (OSError, ValueError, ParseException):
            connection_close(request)
            return error_response(400, "invalid_json", "The request body could not be read (malformed or cut short).")
        if len(body) > limit:
            connection_close(request)
            return error_response(413, "payload_too_large", f"The request body is over {limit} bytes.")
        if length and len(body) < length:
            connection_close(request)
            return error_response(400, "invalid_json", "The request body ended before its Content-Length.")
        request._stream = io.BytesIO(body)
        request.META["CONTENT_LENGTH"] = str(len(body))
        return self.get_response(request)

    def body_read(self, environ: dict, *, expected: int) -> bytes:
        """Up to `expected` bytes of wsgi.input, by the deadline; TimeoutError past it.

        Under gunicorn the socket's timeout is set to the time left before each read (a
        client trickling a byte at a time cannot stretch it); other servers read as they do.
        """
        stream, sock = environ["wsgi.input"], environ.get("gunicorn.socket")
        deadline = time.monotonic() + settings.API_BODY_READ_TIMEOUT_SECONDS
        parts: list[bytes] = []
        received = 0
        try:
            while received < expected:
                if sock is not None:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        raise TimeoutError
                    sock.settimeout(remaining)
                part = stream.read(min(self.read_step, expected - received))
                if not part:
                    break
                parts.append(part)
                received += len(part)
        finally:
            if sock is not None:
                sock.settimeout(None)
        return b"".join(parts)


class AdminNulCharacterMiddleware:
    """A NUL character in an admin query string or form is a 400 before any lookup runs.

    PostgreSQL text cannot hold NUL, so no row could match it, and psycopg refuses to send
    it: every admin filter, search box and lookup parameter (`?resource_id=%00`) was a 500.
    The API's own parameters are validated field by field (400 `validation_error`).
    """

    admin_prefix = "/admin/"

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path.startswith(self.admin_prefix):
            for params in (request.GET, request.POST):
                if any("\x00" in key or any("\x00" in value for value in values) for key, values in params.lists()):
                    raise BadRequest("Null characters are not allowed in admin parameters.")
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
