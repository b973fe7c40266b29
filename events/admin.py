"""Admin for wallet events: read-only (events are append-only), exact searches, no full counts."""

from __future__ import annotations

import uuid
from typing import Any

from django.contrib import admin
from django.db.models import Q, QuerySet
from django.http import HttpRequest

from amani.admin_utils import ReadOnlyModelAdmin, change_link, json_display
from amani.money import amount_display, amount_format
from events.models import BalanceBucket, ProviderBalanceReport, WalletEvent
from events.reconciliation import reconciliation_get
from wallets.models import Provider, Wallet


def _wallet_link(row: WalletEvent | ProviderBalanceReport) -> str:
    """The row's wallet (its public id), linked to the wallet's admin page."""
    return change_link("admin:wallets_wallet_change", row.wallet_id, row.wallet.public_id)


class ProviderFilter(admin.SimpleListFilter):
    """Choices from the Provider enum: the default filter would scan the table for distinct values."""

    title = "provider"
    parameter_name = "provider"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return list(Provider.choices)

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        return queryset.filter(provider=self.value()) if self.value() else queryset


class CurrencyFilter(admin.SimpleListFilter):
    """Currencies seen in the balance buckets (one row per wallet, currency and day, not per event)."""

    title = "currency"
    parameter_name = "currency"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        currencies = set(BalanceBucket.objects.values_list("currency", flat=True).distinct())
        if self.value():  # a chosen currency is always applied, even one no bucket holds yet
            currencies.add(self.value())
        return [(code, code) for code in sorted(currencies)]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        return queryset.filter(currency=self.value()) if self.value() else queryset


@admin.register(WalletEvent)
class WalletEventAdmin(ReadOnlyModelAdmin):
    list_display = (
        "public_id",
        "wallet_link",
        "event_type",
        "amount_display",
        "currency",
        "provider",
        "provider_event_id",
        "occurred_at",
        "created_at",
    )
    list_filter = ("event_type", ProviderFilter, CurrencyFilter)
    list_select_related = ("wallet",)
    deferred_related = ("wallet__metadata",)
    # A placeholder that shows the search box; get_search_results does exact matches only.
    search_fields = ("=public_id",)
    search_help_text = "Exact event id, wallet id, provider event id or idempotency key."
    list_per_page = 100
    fields = (
        "public_id",
        "wallet_link",
        "provider",
        "event_type",
        "amount_display",
        "currency",
        "provider_event_id",
        "idempotency_key",
        "metadata_display",
        "occurred_at",
        "created_at",
    )
    readonly_fields = fields
    json_fields = ("metadata",)
    metadata_display = json_display("metadata")

    def get_ordering(self, request: HttpRequest) -> tuple[str, ...]:
        # One wallet's history: ix_event_wallet_occurred, in the API's order. Everything: the primary key.
        return ("-occurred_at", "-id") if request.GET.get("wallet") else ("-id",)

    def search_condition(self, term: str) -> Q | None:
        # Each branch is an equality on an index: (provider, provider_event_id) is probed once per
        # provider; a wallet id is resolved first so the OR stays on this table's indexes.
        condition = Q(idempotency_key=term) | Q(provider__in=Provider.values, provider_event_id=term)
        try:
            as_uuid = uuid.UUID(term)
        except ValueError:
            pass
        else:
            condition |= Q(public_id=as_uuid)
            wallet_pk = Wallet.objects.filter(public_id=as_uuid).values_list("pk", flat=True).first()
            if wallet_pk is not None:
                condition |= Q(wallet_id=wallet_pk)
        return condition

    @admin.display(description="Wallet", ordering="wallet__public_id")
    def wallet_link(self, event: WalletEvent) -> str:
        return _wallet_link(event)

    @admin.display(description="Amount", ordering="amount")
    def amount_display(self, event: WalletEvent) -> str:
        return amount_display(event.amount, event.currency)


@admin.register(ProviderBalanceReport)
class ProviderBalanceReportAdmin(ReadOnlyModelAdmin):
    """What providers reported, read-only; the change page shows the wallet and currency's reconciliation."""

    list_display = (
        "public_id",
        "wallet_link",
        "currency",
        "available_display",
        "ledger_display",
        "reported_at",
        "created_at",
    )
    list_filter = (CurrencyFilter,)
    list_select_related = ("wallet",)
    deferred_related = ("wallet__metadata",)
    search_fields = ("=public_id",)
    search_help_text = "Exact report id or wallet id."
    ordering = ("-reported_at", "-id")
    list_per_page = 100
    fields = (
        "public_id",
        "wallet_link",
        "currency",
        "available_display",
        "ledger_display",
        "reported_at",
        "created_at",
        "reconciliation",
    )
    readonly_fields = fields

    def search_condition(self, term: str) -> Q | None:
        try:
            as_uuid = uuid.UUID(term)
        except ValueError:
            return None
        return Q(public_id=as_uuid) | Q(wallet__public_id=as_uuid)

    @admin.display(description="Wallet")
    def wallet_link(self, report: ProviderBalanceReport) -> str:
        return _wallet_link(report)

    @admin.display(description="Available", ordering="available")
    def available_display(self, report: ProviderBalanceReport) -> str:
        return amount_display(report.available, report.currency)

    @admin.display(description="Ledger", ordering="ledger")
    def ledger_display(self, report: ProviderBalanceReport) -> str:
        return "-" if report.ledger is None else amount_display(report.ledger, report.currency)

    @admin.display(description="Latest reconciliation (this wallet and currency)")
    def reconciliation(self, report: ProviderBalanceReport) -> str:
        result = reconciliation_get(wallet=report.wallet, currency=report.currency)
        if result is None:
            return "-"
        ledger = result.difference_ledger
        return (
            f"{result.status} (report of {result.reported_at:%Y-%m-%d %H:%M:%S} UTC): reconstructed available "
            f"{amount_format(result.reconstructed.available, result.currency)}, ledger "
            f"{amount_format(result.reconstructed.ledger, result.currency)}; difference available "
            f"{amount_format(result.difference_available, result.currency)}, ledger "
            f"{'-' if ledger is None else amount_format(ledger, result.currency)}"
        )


# The wallet's page becomes the support console (events/admin_console.py replaces the registry's admin).
import events.admin_console  # noqa: E402, F401
