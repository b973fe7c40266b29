"""The support console: the wallet's admin page tells its whole story, and one search finds any wallet.

It lives in `events`, not `wallets`: everything it shows beyond the wallet's own fields
(balances, reconciliation, the timeline, the chart, the statement) is read from events,
and the layering runs events -> wallets -> audit. `wallets.admin.WalletAdmin` keeps the
registry's own page (fields, exact search, deactivate/reactivate with a reason);
`WalletConsoleAdmin` extends it and takes its place in the admin site.

Read-only for everyone (the Support group has view permission only); the status
actions stay on the list and are offered on the console to staff holding
`wallets.change_wallet_status`. Every part of the page is a bounded number of
statements whatever the history (events.console); bad input in the filters shows a
message and falls back to the defaults, never a 500.
"""

from __future__ import annotations

import csv
import datetime as dt
from collections.abc import Iterator
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.views.main import ChangeList
from django.core.exceptions import PermissionDenied
from django.db.models import Q, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, StreamingHttpResponse
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils import timezone
from rest_framework.exceptions import ValidationError as ApiValidationError

from amani.money import MoneyError, amount_display, amount_format, currency_exponent
from events.balances import wallet_balances
from events.console import (
    TimelineFilters,
    timeline_kind_choices,
    wallet_balance_reports,
    wallet_balance_series,
    wallet_search,
    wallet_timeline,
)
from events.console_chart import balance_chart_svg
from events.models import EventType
from events.reconciliation import (
    DRIFT,
    MATCHED,
    wallet_reconciliation_statuses,
    wallet_reconciliations,
    wallets_in_status,
    wallets_with_reports,
)
from events.statement import wallet_statement_entries
from wallets.admin import WalletAdmin
from wallets.models import Wallet

CHART_DAYS = 90
TIMELINE_PAGE = 50
DATETIME_FORMATS = ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M:%S", "%Y-%m-%d"]


class CurrencyField(forms.CharField):
    def clean(self, value: Any) -> str:
        code = super().clean(value)
        if code:
            try:
                currency_exponent(code)
            except MoneyError as exc:
                raise forms.ValidationError(str(exc)) from None
        return code


class UtcDateTimeField(forms.DateTimeField):
    """A browser's datetime-local value, read as UTC (the console shows every time in UTC)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(required=False, input_formats=DATETIME_FORMATS, **kwargs)


class ChartDateField(forms.DateField):
    """A chart bound: a day of a plausible history (the far ends of the calendar have no neighbours)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(required=False, **kwargs)

    def clean(self, value: Any) -> dt.date | None:
        day = super().clean(value)
        if day is not None and not dt.date(1970, 1, 1) <= day <= dt.date(2999, 12, 31):
            raise forms.ValidationError("Must be between 1970-01-01 and 2999-12-31.")
        return day


class ConsoleForm(forms.Form):
    """The console's query string: the as-of instant, the chart's range, the timeline's filters."""

    as_of = UtcDateTimeField(label="Balances as of (UTC)")
    chart_from = ChartDateField(label="Chart from")
    chart_to = ChartDateField(label="Chart to")
    kind = forms.ChoiceField(
        required=False,
        choices=timeline_kind_choices,
        widget=forms.Select(attrs={"form": "console-query"}),
    )
    event_type = forms.ChoiceField(
        required=False,
        choices=[("", "any event type"), *EventType.choices],
        widget=forms.Select(attrs={"form": "console-query"}),
    )
    currency = CurrencyField(required=False, max_length=3)
    occurred_from = UtcDateTimeField(label="From (UTC)")
    occurred_to = UtcDateTimeField(label="To (UTC)")
    cursor = forms.CharField(required=False, max_length=1024, widget=forms.HiddenInput)

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        for low, high in (("chart_from", "chart_to"), ("occurred_from", "occurred_to")):
            if data.get(low) and data.get(high) and data[low] > data[high]:
                self.add_error(low, "Must not be after the end of the range.")
        return data


class StatementForm(forms.Form):
    currency = CurrencyField(max_length=3)
    period_from = UtcDateTimeField(label="From (UTC)")
    period_to = UtcDateTimeField(label="To (UTC)")

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if data.get("period_from") and data.get("period_to") and data["period_from"] > data["period_to"]:
            self.add_error("period_from", "Must not be after To.")
        return data


class ReconciliationFilter(admin.SimpleListFilter):
    """The latest provider balance reports against the events (events.reconciliation)."""

    title = "reconciliation"
    parameter_name = "reconciliation"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return [(DRIFT, "Drift"), (MATCHED, "Matched"), ("none", "No provider report")]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        if self.value() in (DRIFT, MATCHED):
            return queryset.filter(pk__in=wallets_in_status(self.value()))
        if self.value() == "none":
            return queryset.exclude(pk__in=wallets_with_reports())
        return queryset


def _valid(form: forms.Form, request: HttpRequest) -> dict[str, Any]:
    """The form's clean values; each bad one is reported to the user and replaced by its default."""
    if form.is_valid():
        return form.cleaned_data
    for name, errors in form.errors.items():
        label = form.fields[name].label or name if name in form.fields else ""
        messages.warning(request, f"{label}: {' '.join(errors)} (ignored)" if label else " ".join(errors))
    return {name: value for name, value in form.cleaned_data.items() if name not in form.errors}


class WalletConsoleAdmin(WalletAdmin):
    change_form_template = "admin/events/wallet_console.html"
    list_display = (*WalletAdmin.list_display[:-1], "reconciliation", WalletAdmin.list_display[-1])
    list_filter = (*WalletAdmin.list_filter, ReconciliationFilter)
    search_help_text = (
        "Any exact identifier: wallet id, user id, provider account or customer id, event id, provider event id, "
        "idempotency key, request id. One match opens the wallet."
    )

    # --- the list and the search ---------------------------------------------------------------

    def get_changelist_instance(self, request: HttpRequest) -> ChangeList:
        # One query for the page's reconciliation statuses, not one per row (and none in the count).
        changelist = super().get_changelist_instance(request)
        statuses = wallet_reconciliation_statuses(wallet_pks=[wallet.pk for wallet in changelist.result_list])
        for wallet in changelist.result_list:
            wallet.reconciliation_status = statuses.get(wallet.pk)
        return changelist

    @admin.display(description="Reconciliation")
    def reconciliation(self, wallet: Wallet) -> str:
        """`drift` when any currency's latest provider report disagrees with the events."""
        return getattr(wallet, "reconciliation_status", None) or "-"

    def search_condition(self, term: str) -> Q | None:
        return Q(pk__in=wallet_search(term=term))

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        term = request.GET.get("q", "")
        if request.method == "GET" and term.strip():
            found = wallet_search(term=term)
            if len(found) == 1:  # one wallet: land on it
                return HttpResponseRedirect(reverse("admin:wallets_wallet_change", args=[found[0]]))
        return super().changelist_view(request, extra_context)

    # --- the console ---------------------------------------------------------------------------

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        wallet = self.get_object(request, object_id)
        if wallet is None or not self.has_view_permission(request, wallet):
            return super().change_view(request, object_id, form_url, extra_context)
        context = {**(extra_context or {}), **self.console_context(request, wallet)}
        return super().change_view(request, object_id, form_url, context)

    def get_object(self, request: HttpRequest, object_id: str, from_field: str | None = None) -> Wallet | None:
        # change_view asks twice (here and in Django's own view): one query.
        cache = request.__dict__.setdefault("_console_wallets", {})
        if object_id not in cache:
            cache[object_id] = super().get_object(request, object_id, from_field)
        return cache[object_id]

    def console_context(self, request: HttpRequest, wallet: Wallet) -> dict[str, Any]:
        form = ConsoleForm(request.GET)
        query = _valid(form, request)
        now = timezone.now()
        as_of = query.get("as_of") or now
        balances = wallet_balances(wallet=wallet, as_of=as_of)
        reconciliations = wallet_reconciliations(wallet=wallet)

        chart_to = query.get("chart_to") or now.date()
        chart_from = query.get("chart_from") or chart_to - dt.timedelta(days=CHART_DAYS - 1)
        series = wallet_balance_series(wallet=wallet, start=chart_from, end=chart_to)
        day_start = dt.datetime.combine(chart_from, dt.time.min, tzinfo=dt.UTC)
        day_end = dt.datetime.combine(chart_to + dt.timedelta(days=1), dt.time.min, tzinfo=dt.UTC)
        reports = wallet_balance_reports(
            wallet=wallet, reported_from=day_start, reported_to=day_end - dt.timedelta(microseconds=1)
        )
        latest = {r.currency: r for r in reconciliations}
        charts = [
            {
                "currency": currency,
                "svg": balance_chart_svg(
                    currency=currency,
                    points=series.get(currency, []),
                    reports=[r for r in reports if r.currency == currency],
                    latest=latest.get(currency),
                    start=chart_from,
                    end=chart_to,
                ),
            }
            for currency in sorted(set(series) | {r.currency for r in reports})
        ]

        filters = TimelineFilters(
            kind=query.get("kind") or None,
            event_type=query.get("event_type") or None,
            currency=query.get("currency") or None,
            occurred_from=query.get("occurred_from"),
            occurred_to=query.get("occurred_to"),
        )
        try:
            timeline = wallet_timeline(wallet=wallet, filters=filters, limit=TIMELINE_PAGE, cursor=query.get("cursor"))
        except ApiValidationError:
            messages.warning(request, "That page link is not valid for these filters: showing the newest entries.")
            timeline = wallet_timeline(wallet=wallet, filters=filters, limit=TIMELINE_PAGE)
        next_query = request.GET.copy()
        next_query["cursor"] = timeline.next_cursor or ""
        first_query = request.GET.copy()
        first_query.pop("cursor", None)

        return {
            "console": {
                "identity": [
                    ("Wallet id", wallet.public_id),
                    ("User id", wallet.user_id),
                    ("Provider", wallet.get_provider_display()),
                    ("Provider account id", wallet.provider_account_id),
                    ("Provider customer id", wallet.provider_customer_id or ""),
                    ("Status", "active" if wallet.is_active else "deactivated"),
                ],
                "as_of": as_of,
                "as_of_given": bool(query.get("as_of")),
                "balances": [
                    {
                        "currency": b.currency,
                        "ledger": amount_display(b.ledger, b.currency),
                        "held": amount_display(b.held, b.currency),
                        "available": amount_display(b.available, b.currency),
                        "event_count": b.event_count,
                        "last_event_at": b.last_event_at,
                    }
                    for b in balances
                ],
                "reconciliations": [
                    {
                        "currency": r.currency,
                        "status": r.status,
                        "reported_at": r.reported_at,
                        "reported_available": amount_display(r.reported_available, r.currency),
                        "reconstructed_available": amount_display(r.reconstructed.available, r.currency),
                        "difference_available": amount_display(r.difference_available, r.currency),
                        "difference_ledger": "-"
                        if r.difference_ledger is None
                        else amount_display(r.difference_ledger, r.currency),
                    }
                    for r in reconciliations
                ],
                "charts": charts,
                "chart_from": chart_from,
                "chart_to": chart_to,
                "form": form,
                "timeline": [
                    {
                        "row": row,
                        "amount": "" if row.amount is None else amount_display(row.amount, row.currency or ""),
                        "url": reverse(row.detail_url_name, args=[row.pk]),
                    }
                    for row in timeline.rows
                ],
                "next_url": f"?{next_query.urlencode()}" if timeline.next_cursor else "",
                "first_url": f"?{first_query.urlencode()}" if query.get("cursor") else "",
                "statement_url": reverse("admin:wallets_wallet_statement", args=[wallet.pk]),
                "statement_currencies": [b.currency for b in balances],
                "can_change_status": self.has_change_wallet_status_permission(request),
                "changelist_url": reverse("admin:wallets_wallet_changelist"),
            }
        }

    # --- the statement as CSV ------------------------------------------------------------------

    def get_urls(self) -> list:
        view = self.admin_site.admin_view(self.statement_csv_view)
        return [path("<path:object_id>/statement.csv", view, name="wallets_wallet_statement"), *super().get_urls()]

    def statement_csv_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        wallet = get_object_or_404(Wallet, pk=object_id) if object_id.isdigit() else None
        if wallet is None:
            return HttpResponseRedirect(reverse("admin:wallets_wallet_changelist"))
        if not self.has_view_permission(request, wallet):
            raise PermissionDenied
        form = StatementForm(request.GET)
        if not form.is_valid():
            for name, errors in form.errors.items():
                messages.error(request, f"Statement {name.replace('period_', '')}: {' '.join(errors)}")
            return HttpResponseRedirect(reverse("admin:wallets_wallet_change", args=[wallet.pk]))
        data = form.cleaned_data
        currency = data["currency"]
        if data.get("period_from") and not data.get("period_to") and data["period_from"] > timezone.now():
            messages.error(request, "Statement from: must not be in the future.")
            return HttpResponseRedirect(reverse("admin:wallets_wallet_change", args=[wallet.pk]))
        pages = wallet_statement_entries(
            wallet=wallet, currency=currency, period_from=data.get("period_from"), period_to=data.get("period_to")
        )
        response = StreamingHttpResponse(_statement_csv(pages, currency), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="statement-{wallet.public_id}-{currency}.csv"'
        return response


class _Echo:
    def write(self, value: str) -> str:
        return value


def _statement_csv(pages: Iterator, currency: str) -> Iterator[str]:
    """The statement as CSV rows: an opening line, one line per entry, a closing line."""
    writer = csv.writer(_Echo())
    columns = ["occurred_at", "event_id", "event_type", "amount", "currency", "provider_event_id"]
    yield writer.writerow([*columns, "ledger", "held", "available"])
    closing = None
    for page in pages:
        if closing is None:
            when = "" if page.period_from is None else page.period_from.isoformat()
            opening = page.opening
            yield writer.writerow(
                [when, "", "opening", "", currency, "", *(amount_display(v, currency) for v in _triple(opening))]
            )
        for entry in page.entries:
            event = entry.event
            yield writer.writerow(
                [
                    event.occurred_at.astimezone(dt.UTC).isoformat(),
                    event.public_id,
                    event.event_type,
                    amount_format(event.amount, currency),
                    currency,
                    event.provider_event_id or "",
                    *(amount_display(v, currency) for v in _triple(entry.balance)),
                ]
            )
        closing = page
    if closing is not None:
        yield writer.writerow(
            [
                closing.period_to.isoformat(),
                "",
                "closing",
                "",
                currency,
                "",
                *(amount_display(v, currency) for v in _triple(closing.closing)),
            ]
        )


def _triple(balance: Any) -> tuple:
    return balance.ledger, balance.held, balance.available


admin.site.unregister(Wallet)
admin.site.register(Wallet, WalletConsoleAdmin)
