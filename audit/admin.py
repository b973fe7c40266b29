"""The audit trail for support staff: read-only for everyone, searchable by exact ids."""

from __future__ import annotations

import contextlib
import uuid

from django.contrib import admin
from django.db.models import Q, QuerySet
from django.http import HttpRequest

from amani.admin_utils import ReadOnlyModelAdmin, json_display
from audit.models import AuditAction, AuditRecord, AuditResource


class ExactValueFilter(admin.SimpleListFilter):
    field_name = ""

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        if self.value():
            return queryset.filter(**{self.field_name: self.value()})
        return queryset


class ActionFilter(ExactValueFilter):
    """Every AuditAction, recorded yet or not: the choices cost no query."""

    title = "action"
    parameter_name = field_name = "action"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return sorted(AuditAction.choices)


class ResourceTypeFilter(ExactValueFilter):
    """Every AuditResource, recorded yet or not: no query over the records either."""

    title = "resource type"
    parameter_name = field_name = "resource_type"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return sorted(AuditResource.choices)


@admin.register(AuditRecord)
class AuditRecordAdmin(ReadOnlyModelAdmin):
    """Append-only: nobody adds, changes or deletes records here, superusers included."""

    list_display = ("created_at", "action", "actor_type", "actor_id", "resource_type", "resource_id", "request_id")
    list_filter = (ActionFilter, "actor_type", ResourceTypeFilter)
    # A placeholder that shows the search box; get_search_results does exact matches only.
    search_fields = ("=resource_id",)
    search_help_text = "Exact resource id, user id or request id."
    ordering = ("-created_at", "-id")
    list_per_page = 50
    fields = (
        "created_at",
        "action",
        "actor_type",
        "actor_id",
        "request_id",
        "user_id",
        "resource_type",
        "resource_id",
        "details_display",
    )
    readonly_fields = fields
    json_fields = ("details",)
    details_display = json_display("details")

    def search_condition(self, term: str) -> Q | None:
        condition = Q(resource_id=term) | Q(request_id=term)
        with contextlib.suppress(ValueError):
            condition |= Q(user_id=uuid.UUID(term))
        return condition
