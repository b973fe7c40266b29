"""Unauthenticated endpoints and the Django-level error handlers.

Errors are the JSON envelope everywhere except in the admin, whose staff users get
Django's own HTML pages.
"""

from __future__ import annotations

from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views import defaults
from django.views.decorators.csrf import csrf_exempt

from amani.api.errors import error_response
from amani.db import fetch_one_reconnecting


# csrf_exempt: otherwise a POST is refused by CsrfViewMiddleware with an HTML 403
# before the view can answer 405 in the envelope (the test client skips CSRF checks).
@csrf_exempt
def healthz(request: HttpRequest) -> JsonResponse:
    """200 when the database answers a query, 503 when it does not."""
    if request.method not in ("GET", "HEAD"):
        response = error_response(405, "method_not_allowed", f'Method "{request.method}" not allowed.')
        response["Allow"] = "GET, HEAD"
        return response
    try:
        fetch_one_reconnecting("SELECT 1", [])  # a connection that died while idle is not an outage
    except DatabaseError:
        return JsonResponse({"status": "unavailable", "database": "down"}, status=503)
    return JsonResponse({"status": "ok", "database": "ok"})


def _is_admin(request: HttpRequest) -> bool:
    return request.path.startswith("/admin/")


def not_found(request: HttpRequest, exception: Exception | None = None, *args, **kwargs) -> HttpResponse:
    if _is_admin(request) and exception is not None:
        return defaults.page_not_found(request, exception)
    return error_response(404, "not_found", "No such resource.")


def server_error(request: HttpRequest, *args, **kwargs) -> JsonResponse:
    return error_response(500, "internal_error", "An unexpected error occurred; it has been logged.")


def bad_request(request: HttpRequest, exception: Exception | None = None, *args, **kwargs) -> JsonResponse:
    return error_response(400, "bad_request", "The request could not be understood.")


def permission_denied(request: HttpRequest, exception: Exception | None = None, *args, **kwargs) -> HttpResponse:
    if _is_admin(request) and exception is not None:
        return defaults.permission_denied(request, exception)
    return error_response(403, "permission_denied", "You do not have permission to do this.")
