"""Admin for webhook deliveries: read-only list with filters by provider and outcome, and a replay action."""

from __future__ import annotations

import json
import uuid
from typing import Any

from django.contrib import admin, messages
from django.db.models import Q, QuerySet
from django.http import HttpRequest
from django.utils.html import format_html

from amani.actors import Actor
from amani.admin_utils import ReadOnlyModelAdmin, change_link
from amani.json_bounds import document_loads
from webhooks.models import WebhookDelivery
from webhooks.providers import PROVIDERS
from webhooks.services import webhook_deliveries_replay


class WebhookProviderFilter(admin.SimpleListFilter):
    """The registered providers: the default filter would scan the table for distinct values."""

    title = "provider"
    parameter_name = "provider"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [(name, name) for name in PROVIDERS]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        return queryset.filter(provider=self.value()) if self.value() else queryset


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ReadOnlyModelAdmin):
    list_display = (
        "public_id",
        "provider",
        "event_name",
        "reference",
        "outcome",
        "wallet_link",
        "event_link",
        "received_at",
    )
    list_filter = (WebhookProviderFilter, "outcome")
    list_select_related = ("wallet", "event")
    search_fields = ("=public_id",)
    search_help_text = "Exact delivery id, provider reference, wallet id or event id."
    ordering = ("-id",)
    list_per_page = 100
    actions = ("replay_deliveries",)
    fields = (
        "public_id",
        "provider",
        "received_at",
        "event_name",
        "reference",
        "outcome",
        "reason",
        "occurred_at",
        "wallet_link",
        "event_link",
        "decided_at",
        "body_display",
    )
    readonly_fields = fields

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        queryset = super().get_queryset(request)
        # The list never shows the body; the change page does.
        return queryset if request.resolver_match.url_name.endswith("_change") else queryset.defer("body")

    def search_condition(self, term: str) -> Q | None:
        condition = Q(provider__in=list(PROVIDERS), reference=term)  # ix_webhook_provider_reference
        try:
            as_uuid = uuid.UUID(term)
        except ValueError:
            return condition
        return condition | Q(public_id=as_uuid) | Q(wallet__public_id=as_uuid) | Q(event__public_id=as_uuid)

    @admin.display(description="Wallet")
    def wallet_link(self, delivery: WebhookDelivery) -> str:
        wallet = delivery.wallet
        return change_link("admin:wallets_wallet_change", delivery.wallet_id, wallet and wallet.public_id)

    @admin.display(description="Event")
    def event_link(self, delivery: WebhookDelivery) -> str:
        event = delivery.event
        return change_link("admin:events_walletevent_change", delivery.event_id, event and event.public_id)

    @admin.display(description="Body as received")
    def body_display(self, delivery: WebhookDelivery) -> str:
        try:  # within the one JSON bound, indented; anything else exactly as received
            text = json.dumps(document_loads(delivery.body), indent=2, ensure_ascii=False)
        except ValueError:
            text = delivery.body
        return format_html("<pre>{}</pre>", text)

    def has_replay_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("webhooks.replay_webhookdelivery")

    @admin.action(description="Decide selected unmatched deliveries again", permissions=["replay"])
    def replay_deliveries(self, request: HttpRequest, queryset: QuerySet) -> None:
        selected = list(queryset.values_list("public_id", flat=True))
        actor = Actor.staff(request.user.get_username(), getattr(request, "request_id", ""))
        summary = webhook_deliveries_replay(actor=actor, public_ids=selected)
        skipped = len(selected) - summary.replayed
        self.message_user(
            request,
            f"{summary.line()}; {skipped} selected delivery(ies) were not unmatched and were left as they are.",
            messages.SUCCESS,
        )
