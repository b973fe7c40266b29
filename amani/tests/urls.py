"""A test-only API view in front of the real URLs, to exercise the shared API plumbing."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from django.urls import include, path
from rest_framework.request import Request
from rest_framework.response import Response

from amani.api.views import ApiView


class EchoView(ApiView):
    required_scopes = {"GET": "wallets:read", "POST": "wallets:write"}

    def get(self, request: Request, **kwargs: Any) -> Response:
        return Response({"method": "GET", "kwargs": {k: str(v) for k, v in kwargs.items()}, "query": request.GET})

    def post(self, request: Request) -> Response:
        return Response({"method": "POST", "body": self.json_object(request)}, status=201)


class CrashView(ApiView):
    required_scopes = {"GET": "wallets:read"}

    def get(self, request: Request) -> Response:
        raise RuntimeError("boom")


def plain_crash(request: HttpRequest) -> HttpResponse:
    raise RuntimeError("boom outside DRF")


urlpatterns = [
    path("api/v1/test/echo", EchoView.as_view()),
    path("api/v1/test/echo/<uuid:item_id>", EchoView.as_view()),
    path("api/v1/test/text/<str:word>", EchoView.as_view()),
    path("api/v1/test/crash", CrashView.as_view()),
    path("api/v1/test/plain-crash", plain_crash),
    path("", include("amani.urls")),
]
