"""What the support admins share: read-only for everyone, exact-match search, no full COUNT(*)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import Q, QuerySet
from django.http import HttpRequest

from audit.paginator import EstimatedCountPaginator


class ReadOnlyModelAdmin(admin.ModelAdmin):
    """Nobody adds, changes or deletes here, superusers included (changes go through services).

    Search matches exactly: `search_fields` is a placeholder that shows the search box, and
    `search_condition` turns the stripped term into equalities on indexed columns.
    """

    show_full_result_count = False
    paginator = EstimatedCountPaginator

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
