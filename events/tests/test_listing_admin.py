"""The events admin: read-only, exact search, cheap filters, reached from the wallet page."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from amani.paginator import EstimatedCountPaginator, table_row_estimate
from events.models import ProviderBalanceReport, WalletEvent
from events.tests.factories import WalletEventFactory
from testing import roles
from wallets.tests.factories import WalletFactory

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:events_walletevent_changelist")


def listed(response) -> set[int]:
    assert response.status_code == 200
    return {event.pk for event in response.context["cl"].result_list}


@pytest.fixture
def events():
    wallet = WalletFactory(provider="paystack")
    wanted = WalletEventFactory(
        wallet=wallet, idempotency_key="idem-1", currency="KES", event_type="fee", provider_event_id="wanted_evt"
    )
    others = WalletEventFactory.create_batch(3)
    return wallet, wanted, others


def test_changelist_lists_newest_first(admin_client, events):
    _, wanted, others = events
    response = admin_client.get(CHANGELIST)
    assert [e.pk for e in response.context["cl"].result_list] == sorted([wanted.pk, *(o.pk for o in others)])[::-1]


@pytest.mark.parametrize("field", ["public_id", "provider_event_id", "idempotency_key", "wallet"])
def test_search_by_exact_value(admin_client, events, field):
    wallet, wanted, _ = events
    term = str(wallet.public_id) if field == "wallet" else str(getattr(wanted, field))
    assert listed(admin_client.get(CHANGELIST, {"q": term})) == {wanted.pk}


def test_search_is_exact_not_a_substring(admin_client, events):
    _, wanted, _ = events
    assert listed(admin_client.get(CHANGELIST, {"q": wanted.provider_event_id[:-1]})) == set()


@pytest.mark.parametrize(("param", "value"), [("event_type", "fee"), ("provider", "paystack"), ("currency", "KES")])
def test_filters(admin_client, events, param, value):
    _, wanted, _ = events
    assert listed(admin_client.get(CHANGELIST, {param: value})) == {wanted.pk}


def test_wallet_page_link_lists_that_wallets_events(admin_client, events):
    wallet, wanted, _ = events
    older = WalletEventFactory(wallet=wallet, occurred_at=wanted.occurred_at.replace(year=2025))
    response = admin_client.get(CHANGELIST, {"wallet": wallet.pk})
    assert [e.pk for e in response.context["cl"].result_list] == [wanted.pk, older.pk]
    wallet_page = admin_client.get(reverse("admin:wallets_wallet_change", args=[wallet.pk]))
    assert f"{CHANGELIST}?wallet={wallet.pk}" in wallet_page.content.decode()


def _analyze() -> int:
    """Set the planner's row estimate the paginator reads (ANALYZE counts this transaction's rows)."""
    roles.analyze(WalletEvent._meta.db_table)  # as the owner (testing.roles)
    return table_row_estimate(WalletEvent.objects.all())


def _changelist_counts(admin_client, params) -> tuple[Any, list[str]]:
    with CaptureQueriesContext(connection) as queries:
        response = admin_client.get(CHANGELIST, params)
    assert response.status_code == 200
    assert response.context["cl"].show_full_result_count is False
    return response.context["cl"], [q["sql"] for q in queries if "COUNT(" in q["sql"].upper()]


FILTERED = ({"event_type": "fee"}, {"currency": "KES"})


def test_no_full_count_small_table_counts_with_a_cap(admin_client, events):
    """Estimate under the cap (set here, not left by earlier tests): one capped COUNT per page, never a full one."""
    wallet, _, _ = events
    assert _analyze() == 4 <= EstimatedCountPaginator.count_cap
    for params in ({}, {"wallet": wallet.pk}, *FILTERED):
        cl, counts = _changelist_counts(admin_client, params)
        assert len(counts) == 1 and "LIMIT" in counts[0], counts
        assert cl.result_count == cl.queryset.count()


def test_no_full_count_large_table_uses_the_estimate(admin_client, events, monkeypatch):
    """Estimate over the cap: unfiltered pages run no COUNT at all; filtered ones a capped COUNT."""
    wallet, _, _ = events
    monkeypatch.setattr(EstimatedCountPaginator, "count_cap", 2)
    estimate = _analyze()
    assert estimate == 4 > EstimatedCountPaginator.count_cap
    cl, counts = _changelist_counts(admin_client, {})
    assert counts == []
    assert cl.result_count == estimate
    for params in ({"wallet": wallet.pk}, *FILTERED):
        cl, counts = _changelist_counts(admin_client, params)
        assert len(counts) == 1 and "LIMIT" in counts[0], counts
        assert cl.result_count == 1
    # Past the cap a filtered count stops at the cap, still with LIMIT: never a full COUNT(*).
    WalletEventFactory.create_batch(2, wallet=wallet)
    cl, counts = _changelist_counts(admin_client, {"wallet": wallet.pk})
    assert len(counts) == 1 and "LIMIT" in counts[0]
    assert cl.result_count == 2 < cl.queryset.count()


def test_read_only(admin_client, events):
    _, wanted, _ = events
    assert admin_client.get(reverse("admin:events_walletevent_add")).status_code == 403
    detail = admin_client.get(reverse("admin:events_walletevent_change", args=[wanted.pk]))
    assert detail.status_code == 200
    assert b'name="_save"' not in detail.content
    response = admin_client.post(reverse("admin:events_walletevent_delete", args=[wanted.pk]), {"post": "yes"})
    assert response.status_code == 403
    assert WalletEvent.objects.filter(pk=wanted.pk).exists()


@pytest.mark.parametrize(
    ("amount", "currency", "shown"), [("25.5", "NGN", "25.50"), ("1500", "JPY", "1500"), ("1.25", "KWD", "1.250")]
)
def test_amounts_show_the_currencys_minor_unit_digits(admin_client, amount, currency, shown):
    event = WalletEventFactory(amount=Decimal(amount), currency=currency)
    stored = f"{Decimal(amount):.4f}"  # the column's four places, as the admin showed them before
    listing = admin_client.get(CHANGELIST).content.decode()
    assert f'<td class="field-amount_display">{shown}</td>' in listing
    assert stored not in listing
    detail = admin_client.get(reverse("admin:events_walletevent_change", args=[event.pk])).content.decode()
    assert f'<div class="readonly">{shown}</div>' in detail
    assert f'<div class="readonly">{stored}</div>' not in detail  # (the page title is the model's __str__)


def test_provider_report_amounts_show_the_currencys_minor_unit_digits(admin_client):
    wallet = WalletFactory()
    report = ProviderBalanceReport.objects.create(
        wallet=wallet, currency="NGN", available=Decimal("25.5"), ledger=None, reported_at=timezone.now()
    )
    listing = admin_client.get(reverse("admin:events_providerbalancereport_changelist")).content.decode()
    assert '<td class="field-available_display">25.50</td>' in listing
    assert '<td class="field-ledger_display">-</td>' in listing
    report.ledger = Decimal("30")
    report.save()
    detail = admin_client.get(reverse("admin:events_providerbalancereport_change", args=[report.pk])).content.decode()
    assert '<div class="readonly">25.50</div>' in detail and '<div class="readonly">30.00</div>' in detail
    assert '<div class="readonly">25.5000</div>' not in detail and "30.0000" not in detail


def test_event_and_report_titles_use_the_currencys_digits(db):
    from decimal import Decimal

    from django.utils import timezone

    from events.models import ProviderBalanceReport, WalletEvent
    from wallets.tests.factories import WalletFactory

    wallet = WalletFactory()
    event = WalletEvent(wallet=wallet, event_type="deposit", amount=Decimal("25.5"), currency="KWD")
    report = ProviderBalanceReport(wallet=wallet, currency="NGN", available=Decimal("7"), reported_at=timezone.now())
    assert str(event) == "deposit 25.500 KWD"
    assert str(report).startswith("NGN available 7.00 at ")
