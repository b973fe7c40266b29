"""Structured request logging: one JSON access line per request, and the request id on
every log record written while the request runs.

What is logged is chosen field by field (never the headers, the body, the query
string or metadata), so secrets, signatures and metadata values cannot reach the
logs through this module.
"""

from __future__ import annotations

import contextvars
import json
import logging
import time
from collections.abc import Callable
from typing import Any

from django.http import HttpRequest, HttpResponse

from amani import metrics, signing

access_logger = logging.getLogger("amani.access")

_request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="")

# Refusals counted as authentication failures (401 codes, and a key outside its scopes).
AUTH_FAILURE_STATUSES = frozenset({401, 403})


class RequestIdFilter(logging.Filter):
    """Adds `request_id` to every record logged during a request (for the JSON formatter)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "request_id", None):
            # django.request logs a 500 after the middleware has returned, passing the request.
            request = getattr(record, "request", None)
            record.request_id = getattr(request, "request_id", "") or _request_id.get()
        return True


def error_code(response: HttpResponse) -> str | None:
    """The envelope's `error.code` of an error response, if it has one."""
    if response.status_code < 400:
        return None
    data = getattr(response, "data", None)  # DRF responses keep their data after rendering
    if data is None and response.get("Content-Type", "").startswith("application/json") and not response.streaming:
        try:
            data = json.loads(response.content[:65536])
        except ValueError:
            return None
    if isinstance(data, dict) and isinstance(data.get("error"), dict):
        code = data["error"].get("code")
        return code if isinstance(code, str) else None
    return None


def _outcome(response: HttpResponse) -> str:
    if response.status_code >= 400:
        return error_code(response) or f"http_{response.status_code}"
    if isinstance(outcome := getattr(response, "outcome", None), str):  # set by the view (webhooks)
        return outcome
    if response.get("Idempotent-Replayed", "").lower() == "true":
        return "replayed"
    return "created" if response.status_code == 201 else "ok"


def _key_id(request: HttpRequest) -> str:
    """The authenticated key id; for a refused request, the key id it claimed (not a secret)."""
    key = getattr(request, "auth", None)  # DRF sets it on the Django request too
    if getattr(key, "key_id", None):
        return key.key_id
    header = request.META.get("HTTP_AUTHORIZATION", "")
    if header and signing.uses_scheme(header):
        try:
            return signing.parse_authorization(header).key_id
        except signing.MalformedCredentials:
            return ""
    return ""


def _route(request: HttpRequest) -> str:
    match = getattr(request, "resolver_match", None)
    if match is None:
        return "unmatched"
    return "/" + (match.route or "").lstrip("^")


class AccessLogMiddleware:
    """One `amani.access` line and one latency observation per request, and the authentication failures.

    Outcomes (registrations, ingestions, batch items) are counted by the services that
    decide them, not here (amani.metrics).

    Goes right after RequestIdMiddleware, so the request id exists and every other
    middleware's time is counted.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        token = _request_id.set(getattr(request, "request_id", ""))
        started = time.perf_counter()
        try:
            response = self.get_response(request)
            seconds = time.perf_counter() - started
            try:
                self._record(request, response, seconds)
            except Exception:  # instrumentation must never turn an answer into a 500
                access_logger.exception("access log failed")
            return response
        finally:
            _request_id.reset(token)

    def _record(self, request: HttpRequest, response: HttpResponse, seconds: float) -> None:
        route = _route(request)
        outcome = _outcome(response)
        metrics.request_observe(route=route, method=request.method, status=response.status_code, seconds=seconds)
        if response.status_code in AUTH_FAILURE_STATUSES and route.startswith("/api/"):
            metrics.auth_failure_observe(code=outcome)
        fields: dict[str, Any] = {
            "request_id": getattr(request, "request_id", ""),
            "key_id": _key_id(request),
            "method": request.method,
            "route": route,
            "path": request.path,
            "status": response.status_code,
            "outcome": outcome,
            "latency_ms": round(seconds * 1000, 2),
        }
        level = logging.ERROR if response.status_code >= 500 else logging.INFO
        access_logger.log(level, "request", extra=fields)
