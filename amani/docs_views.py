"""The OpenAPI document and its browsable page, answering other methods with the JSON 405 envelope.

drf-spectacular's views render errors with their own renderers: the docs page's is an HTML
template (an HTML 405) and the schema's follows `?format=yaml` (a YAML envelope). API.md asks
for the one JSON envelope whatever raised the error.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, JsonResponse
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from amani.api.errors import error_response


class _JsonMethodNotAllowed:
    def http_method_not_allowed(self, request: HttpRequest, *args: Any, **kwargs: Any) -> JsonResponse:
        response = error_response(405, "method_not_allowed", f'Method "{request.method}" not allowed.')
        response["Allow"] = ", ".join(self.allowed_methods)  # type: ignore[attr-defined]
        return response


class SchemaView(_JsonMethodNotAllowed, SpectacularAPIView):
    """GET /api/v1/schema."""


class DocsView(_JsonMethodNotAllowed, SpectacularSwaggerView):
    """GET /api/v1/docs."""
