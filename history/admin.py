"""The chain in the admin: read-only, with its head and the last verification above the blocks."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import Q, QuerySet
from django.http import HttpRequest, HttpResponse

from amani.admin_utils import ReadOnlyModelAdmin
from history.models import Block, Verification
from history.selectors import history_head, verification_latest

INDEX_FIELDS = ("event_ids", "event_public_ids", "audit_ids", "digests")


@admin.register(Block)
class BlockAdmin(ReadOnlyModelAdmin):
    list_display = ("number", "sealed_at", "event_count", "audit_count", "records_total", "hash")
    search_fields = ("hash",)  # placeholder: search_condition matches exactly
    exclude = INDEX_FIELDS
    readonly_fields = [field.name for field in Block._meta.fields if field.name not in INDEX_FIELDS]
    change_list_template = "admin/history/block/change_list.html"

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        # The record index holds 56 bytes per record: never load it to list or show a block.
        return super().get_queryset(request).defer(*INDEX_FIELDS)

    def search_condition(self, term: str) -> Q | None:
        """A block number, or a block hash (what a published head is)."""
        if term.isdigit() and len(term) < 19:
            return Q(number=int(term))
        return Q(hash=term.lower()) if len(term) == 64 else None

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        extra_context = {**(extra_context or {}), "head": history_head(), "verification": verification_latest()}
        return super().changelist_view(request, extra_context)


@admin.register(Verification)
class VerificationAdmin(ReadOnlyModelAdmin):
    list_display = ("finished_at", "ok", "blocks", "records", "head", "problem")
    list_filter = ("ok",)
    readonly_fields = [field.name for field in Verification._meta.fields]
