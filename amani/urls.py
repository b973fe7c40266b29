from django.contrib import admin
from django.urls import include, path, re_path
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.renderers import (
    OpenApiJsonRenderer,
    OpenApiJsonRenderer2,
    OpenApiYamlRenderer,
    OpenApiYamlRenderer2,
)

from amani import views
from amani.docs_views import DocsView, SchemaView
from amani.metrics import metrics_view

api_v1 = [
    # JSON unless YAML is asked for (`?format=yaml` or `Accept: application/yaml`): API.md's
    # bodies are JSON, and drf-spectacular's own default is YAML.
    path(
        "schema",
        SchemaView.as_view(
            authentication_classes=[],
            permission_classes=[],
            renderer_classes=[OpenApiJsonRenderer2, OpenApiJsonRenderer, OpenApiYamlRenderer, OpenApiYamlRenderer2],
        ),
        name="schema",
    ),
    path(
        "docs",
        DocsView.as_view(url_name="schema", authentication_classes=[], permission_classes=[]),
        name="docs",
    ),
    path("", include("wallets.api.urls")),
    path("", include("events.api.urls")),
    path("", include("webhooks.api.urls")),
    path("", include("history.api.urls")),
]

urlpatterns = [
    path("healthz", views.healthz, name="healthz"),
    path("metrics", metrics_view, name="metrics"),
    path("api/v1/", include(api_v1)),
    path("admin/", admin.site.urls),
    # Anything else under /api/ is a 404 in the envelope, whatever DEBUG says.
    # csrf_exempt: a POST to an unknown path (or a path id that is not a UUID) is a 404,
    # not CsrfViewMiddleware's HTML 403.
    re_path(r"^api/", csrf_exempt(views.not_found)),
]

handler400 = "amani.views.bad_request"
handler403 = "amani.views.permission_denied"
handler404 = "amani.views.not_found"
handler500 = "amani.views.server_error"
