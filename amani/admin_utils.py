"""What the support admins share: read-only for everyone, exact-match search, no full COUNT(*)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib import admin
from django.db.models import Q, QuerySet, TextField
from django.db.models.functions import Cast
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html

from amani.json_bounds import json_display_text
from amani.paginator import EstimatedCountPaginator


class ReadOnlyModelAdmin(admin.ModelAdmin):
    """Nobody adds, changes or deletes here, superusers included (changes go through services).

    Search matches exactly: `search_fields` is a placeholder that shows the search box, and
    `search_condition` turns the stripped term into equalities on indexed columns.
    """

    show_full_result_count = False
    paginator = EstimatedCountPaginator
    # JSONFields loaded as text (`<name>_text`) and shown with json_display: Django's JSONField
    # decodes with the recursive json.loads, and a document ~900 levels deep stored before
    # amani.json_bounds existed made every page that loaded its row a 500.
    json_fields: tuple[str, ...] = ()
    # JSONFields of related rows shown as links only ("wallet__metadata"): never loaded.
    deferred_related: tuple[str, ...] = ()

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        queryset = super().get_queryset(request)
        if self.deferred_related:
            relations = {path.split("__")[0] for path in self.deferred_related}
            queryset = queryset.select_related(*relations).defer(*self.deferred_related)
        if self.json_fields:
            texts = {f"{name}_text": Cast(name, output_field=TextField()) for name in self.json_fields}
            queryset = queryset.defer(*self.json_fields).annotate(**texts)
        return queryset

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_search_results(self, request: HttpRequest, queryset: QuerySet, search_term: str) -> tuple[QuerySet, bool]:
        term = search_term.strip()
        if not term:
            return queryset, False
        condition = None if "\x00" in term else self.search_condition(term)
        return (queryset.none() if condition is None else queryset.filter(condition)), False

    def search_condition(self, term: str) -> Q | None:
        """The filter for a non-empty term without NUL characters; None matches nothing."""
        raise NotImplementedError


def change_link(url_name: str, pk: object, text: object) -> str:
    """A link to one object's admin change page (`admin:<app>_<model>_change`), or "-" without one."""
    if pk is None:
        return "-"
    return format_html('<a href="{}">{}</a>', reverse(url_name, args=[pk]), text)


def json_display(field_name: str) -> Callable[[admin.ModelAdmin, Any], str]:
    """A read-only admin field for a JSONField listed in the admin's `json_fields`: its
    stored text, rendered within amani.json_bounds."""

    @admin.display(description=field_name)
    def display(model_admin: admin.ModelAdmin, obj: Any) -> str:
        return format_html('<pre style="margin: 0">{}</pre>', json_display_text(getattr(obj, f"{field_name}_text")))

    return display
