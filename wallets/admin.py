"""The wallet registry for support staff.

Every field is read-only here: a wallet changes only through wallets.services, so each
change has its audit record. Deactivation and reactivation are actions that ask for a
reason and need the `wallets.change_wallet_status` permission (not in the view-only
Support group).

The support console (balances, reconciliation, timeline, statement, the search for any
identifier) extends this admin from `events.admin_console`, where the events live.
"""

from __future__ import annotations

from collections.abc import Callable

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import NoReverseMatch, reverse
from django.utils.html import format_html

from amani.actors import Actor
from amani.admin_utils import ReadOnlyModelAdmin, json_display
from audit.models import AuditResource
from wallets.models import Wallet
from wallets.services import wallet_deactivate, wallet_reactivate


class StatusReasonForm(forms.Form):
    reason = forms.CharField(
        max_length=1000,
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
        help_text="Recorded in each wallet's audit record (ticket number, what was seen).",
    )


def _link(url_name: str, query: str, text: str) -> str:
    try:
        url = reverse(url_name)
    except NoReverseMatch:  # that admin is not installed
        return "-"
    return format_html('<a href="{}?{}">{}</a>', url, query, text)


@admin.register(Wallet)
class WalletAdmin(ReadOnlyModelAdmin):
    list_display = (
        "public_id",
        "user_id",
        "provider",
        "provider_account_id",
        "is_active",
        "created_at",
    )
    list_filter = ("provider", "is_active")
    # A placeholder that shows the search box; the search itself (exact matches on any identifier,
    # events' and audit records' included) is the console's: events.admin_console.search_condition.
    search_fields = ("=public_id",)
    ordering = ("-created_at", "-id")
    list_per_page = 50
    actions = ("deactivate_wallets", "reactivate_wallets")
    fields = (
        "public_id",
        "user_id",
        "provider",
        "provider_account_id",
        "provider_customer_id",
        "idempotency_key",
        "metadata_display",
        "is_active",
        "created_at",
        "updated_at",
        "audit_records",
        "events",
    )
    readonly_fields = fields
    json_fields = ("metadata",)
    metadata_display = json_display("metadata")

    @admin.display(description="Audit records")
    def audit_records(self, wallet: Wallet) -> str:
        query = f"resource_type={AuditResource.WALLET.value}&resource_id={wallet.public_id}"
        return _link("admin:audit_auditrecord_changelist", query, "This wallet's audit records")

    @admin.display(description="Events")
    def events(self, wallet: Wallet) -> str:
        return _link("admin:events_walletevent_changelist", f"wallet={wallet.pk}", "This wallet's events")

    def has_change_wallet_status_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("wallets.change_wallet_status")

    @admin.action(description="Deactivate selected wallets…", permissions=["change_wallet_status"])
    def deactivate_wallets(self, request: HttpRequest, queryset: QuerySet) -> HttpResponse | None:
        return self._status_action(request, queryset, "deactivate_wallets", wallet_deactivate, "deactivated")

    @admin.action(description="Reactivate selected wallets…", permissions=["change_wallet_status"])
    def reactivate_wallets(self, request: HttpRequest, queryset: QuerySet) -> HttpResponse | None:
        return self._status_action(request, queryset, "reactivate_wallets", wallet_reactivate, "reactivated")

    def _status_action(
        self,
        request: HttpRequest,
        queryset: QuerySet,
        action: str,
        service: Callable[..., bool],
        verb: str,
    ) -> HttpResponse | None:
        """First a page asking for the reason; on its submit, the service for each wallet."""
        form = StatusReasonForm(request.POST if "apply" in request.POST else None)
        wallets = list(queryset.order_by("pk"))  # one lock order for concurrent actions
        if form.is_bound and form.is_valid():
            actor = Actor.staff(request.user.get_username(), getattr(request, "request_id", ""))
            changed = sum(service(wallet=w, reason=form.cleaned_data["reason"], actor=actor) for w in wallets)
            unchanged = len(wallets) - changed
            self.message_user(
                request,
                f"{changed} wallet(s) {verb}; {unchanged} already {verb} and left unchanged.",
                messages.SUCCESS,
            )
            return None
        context = {
            **self.admin_site.each_context(request),
            "title": f"Why are these wallets being {verb}?",
            "opts": self.model._meta,
            "wallets": wallets,
            "form": form,
            "action": action,
            "verb": verb,
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            "media": self.media + form.media,
        }
        return TemplateResponse(request, "admin/wallets/wallet/status_reason.html", context)
