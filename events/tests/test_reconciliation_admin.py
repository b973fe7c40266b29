"""The wallet admin shows each wallet's latest reconciliation status and filters on it."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from events.tests.factories import record, report
from wallets.tests.factories import WalletFactory

CHANGELIST = "admin:wallets_wallet_changelist"


@pytest.fixture
def wallets(db):
    """matched (two currencies), drift (one of two currencies drifts), and no report at all."""
    matched, drifting, silent = WalletFactory(), WalletFactory(), WalletFactory()
    for wallet in (matched, drifting, silent):
        record(wallet, "deposit", "100.00", "NGN", "2026-11-01T08:00:00Z")
        record(wallet, "deposit", "1.000", "KWD", "2026-11-01T08:00:00Z")
    report(matched, "100.00", "100.00", reported_at="2026-11-01T09:00:00Z")
    report(matched, "1.000", reported_at="2026-11-01T09:00:00Z", currency="KWD")
    report(drifting, "100.00", reported_at="2026-11-01T09:00:00Z")
    report(drifting, "1.001", reported_at="2026-11-01T09:00:00Z", currency="KWD")
    return {"matched": matched, "drift": drifting, "none": silent}


def rows(response) -> dict[str, str]:
    """public id -> reconciliation cell of each changelist row."""
    result = {}
    for wallet_row in response.context["cl"].result_list:
        result[str(wallet_row.public_id)] = wallet_row.reconciliation_status or "-"
    return result


def test_changelist_shows_each_wallets_status(admin_client, wallets):
    response = admin_client.get(reverse(CHANGELIST))
    assert response.status_code == 200
    assert rows(response) == {
        str(wallets["matched"].public_id): "matched",
        str(wallets["drift"].public_id): "drift",
        str(wallets["none"].public_id): "-",
    }
    assert b'<td class="field-reconciliation">drift</td>' in response.content
    assert b'<td class="field-reconciliation">matched</td>' in response.content


@pytest.mark.parametrize("value", ["drift", "matched", "none"])
def test_reconciliation_filter(admin_client, wallets, value):
    response = admin_client.get(reverse(CHANGELIST), {"reconciliation": value})
    assert response.status_code == 200
    assert list(rows(response)) == [str(wallets[value].public_id)]


def test_a_newer_matching_report_clears_the_wallets_drift(admin_client, wallets):
    report(wallets["drift"], "1.000", reported_at="2026-11-01T10:00:00Z", currency="KWD")
    response = admin_client.get(reverse(CHANGELIST), {"reconciliation": "drift"})
    assert rows(response) == {}


def test_changelist_query_count_does_not_grow_with_wallets(admin_client, wallets):
    with CaptureQueriesContext(connection) as few:
        admin_client.get(reverse(CHANGELIST))
    for n in range(5):
        wallet = WalletFactory()
        record(wallet, "deposit", "1.00", "NGN", "2026-11-01T08:00:00Z")
        report(wallet, "2.00" if n % 2 else "1.00", reported_at="2026-11-01T09:00:00Z")
    with CaptureQueriesContext(connection) as many:
        response = admin_client.get(reverse(CHANGELIST))
    assert len(rows(response)) == 8
    assert len(many.captured_queries) == len(few.captured_queries)


def test_report_admin_lists_reports_and_finds_them_by_wallet(admin_client, wallets):
    changelist = reverse("admin:events_providerbalancereport_changelist")
    response = admin_client.get(changelist)
    assert response.status_code == 200
    assert len(response.context["cl"].result_list) == 4
    response = admin_client.get(changelist, {"q": str(wallets["drift"].public_id)})
    assert {r.currency for r in response.context["cl"].result_list} == {"NGN", "KWD"}
    assert admin_client.get(changelist, {"q": "not-a-uuid"}).context["cl"].result_list.count() == 0


def test_report_change_page_shows_the_reconciliation(admin_client, wallets):
    drifting = wallets["drift"].balance_reports.get(currency="KWD")
    response = admin_client.get(reverse("admin:events_providerbalancereport_change", args=[drifting.pk]))
    assert response.status_code == 200
    assert b"drift (report of 2026-11-01 09:00:00 UTC): reconstructed available 1.000" in response.content
    assert b"difference available 0.001, ledger -" in response.content


def test_reports_are_read_only_in_the_admin(admin_client, wallets):
    assert admin_client.get(reverse("admin:events_providerbalancereport_add")).status_code == 403
