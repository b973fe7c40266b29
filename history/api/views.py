"""GET /api/v1/history/head: the latest block, for publishing outside the service."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response

from amani.api.serializers import AUTH_ERRORS, error_doc
from amani.api.views import ApiView
from amani.errors import NotFound
from history.api.serializers import HeadSerializer, head_representation
from history.selectors import history_head


class HistoryHeadView(ApiView):
    required_scopes = {"GET": "events:read"}

    @extend_schema(
        operation_id="history_head",
        summary="The head of the tamper-evident history",
        description="The latest sealed block. Publish its hash outside the service: a later "
        "`manage.py verify_history --head HASH` proves the history up to it is unchanged.",
        responses={
            200: OpenApiResponse(HeadSerializer, description="The latest block."),
            404: error_doc("not_found: nothing has been sealed yet."),
            **AUTH_ERRORS,
        },
    )
    def get(self, request: Request) -> Response:
        block = history_head()
        if block is None:
            raise NotFound("Nothing has been sealed yet.")
        return Response(head_representation(block))
