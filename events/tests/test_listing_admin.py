"""The events admin: read-only, exact search, cheap filters, reached from the wallet page."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from events.models import WalletEvent
from events.tests.factories import WalletEventFactory, WalletFactory

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


def test_no_full_count(admin_client, events):
    wallet, _, _ = events
    for params in ({}, {"wallet": wallet.pk}, {"event_type": "fee"}):
        with CaptureQueriesContext(connection) as queries:
            response = admin_client.get(CHANGELIST, params)
        assert response.context["cl"].show_full_result_count is False
        counts = [q["sql"] for q in queries if "COUNT(" in q["sql"].upper()]
        assert all("LIMIT" in sql for sql in counts)  # an estimate or a capped count, never a full COUNT(*)


def test_read_only(admin_client, events):
    _, wanted, _ = events
    assert admin_client.get(reverse("admin:events_walletevent_add")).status_code == 403
    detail = admin_client.get(reverse("admin:events_walletevent_change", args=[wanted.pk]))
    assert detail.status_code == 200
    assert b'name="_save"' not in detail.content
    response = admin_client.post(reverse("admin:events_walletevent_delete", args=[wanted.pk]), {"post": "yes"})
    assert response.status_code == 403
    assert WalletEvent.objects.filter(pk=wanted.pk).exists()
