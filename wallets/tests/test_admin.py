"""The wallet admin for support staff, through Django's test client."""

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from audit.models import AuditRecord
from audit.tests.support import staff_user
from wallets.models import Wallet
from wallets.tests.factories import WalletFactory

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:wallets_wallet_changelist")


@pytest.fixture
def support(client):
    client.force_login(staff_user("sam"))
    return client


@pytest.fixture
def lead(client):
    client.force_login(staff_user("lee", permissions=("wallets.change_wallet_status",)))
    return client


def listed(response) -> set:
    if response.status_code == 302:  # exactly one match: the search lands on its page (events.admin_console)
        return {int(re.fullmatch(r"/admin/wallets/wallet/(\d+)/change/", response["Location"]).group(1))}
    assert response.status_code == 200
    return {wallet.pk for wallet in response.context["cl"].result_list}


def test_support_sees_the_changelist(support):
    wallets = WalletFactory.create_batch(3)
    assert listed(support.get(CHANGELIST)) == {w.pk for w in wallets}


def test_changelist_runs_no_full_count(support):
    WalletFactory.create_batch(3)
    with CaptureQueriesContext(connection) as queries:
        support.get(CHANGELIST, {"provider": "fincra"})
    counts = [q["sql"] for q in queries if "COUNT(" in q["sql"].upper() and "wallets_wallet" in q["sql"]]
    assert counts, "the paginator counts, capped"
    assert all(re.search(r"LIMIT \d+", sql) for sql in counts), counts


@pytest.mark.parametrize("field", ["public_id", "user_id", "provider_account_id", "idempotency_key"])
def test_search_by_exact_identifier(support, field):
    wanted = WalletFactory(idempotency_key="idem-key-wanted")
    WalletFactory.create_batch(2, idempotency_key=None)
    assert listed(support.get(CHANGELIST, {"q": str(getattr(wanted, field))})) == {wanted.pk}


def test_search_is_exact_not_a_substring(support):
    wallet = WalletFactory(provider_account_id="fincra_wallet_12345")
    assert listed(support.get(CHANGELIST, {"q": "fincra_wallet_123"})) == set()
    assert listed(support.get(CHANGELIST, {"q": str(wallet.public_id)[:8]})) == set()
    assert listed(support.get(CHANGELIST, {"q": " fincra_wallet_12345 "})) == {wallet.pk}


def test_filters_by_provider_and_active(support):
    fincra = WalletFactory(provider="fincra")
    paystack_inactive = WalletFactory(provider="paystack", is_active=False)
    assert listed(support.get(CHANGELIST, {"provider": "paystack"})) == {paystack_inactive.pk}
    assert listed(support.get(CHANGELIST, {"is_active__exact": "1"})) == {fincra.pk}


def test_change_page_is_read_only_with_audit_link(support):
    wallet = WalletFactory()
    response = support.get(reverse("admin:wallets_wallet_change", args=[wallet.pk]))
    assert response.status_code == 200
    content = response.content.decode()
    assert 'name="provider_account_id"' not in content  # no inputs: every field is read-only
    assert 'name="_save"' not in content
    audit_url = reverse("admin:audit_auditrecord_changelist")
    assert f"{audit_url}?resource_type=wallet&amp;resource_id={wallet.public_id}" in content


def test_audit_link_lists_the_wallets_records(lead):
    wallet = WalletFactory()
    selected = {"action": "deactivate_wallets", "_selected_action": [wallet.pk]}
    lead.post(CHANGELIST, {**selected, "apply": "1", "reason": "x"})
    url = reverse("admin:audit_auditrecord_changelist")
    response = lead.get(url, {"resource_type": "wallet", "resource_id": str(wallet.public_id)})
    assert response.status_code == 200
    assert [r.action for r in response.context["cl"].result_list] == ["deactivate_wallet"]


def test_nobody_adds_or_deletes_wallets_here(admin_client):
    wallet = WalletFactory()
    assert admin_client.get(reverse("admin:wallets_wallet_add")).status_code == 403
    assert admin_client.post(reverse("admin:wallets_wallet_delete", args=[wallet.pk])).status_code == 403
    response = admin_client.post(
        reverse("admin:wallets_wallet_change", args=[wallet.pk]), {"provider_account_id": "changed"}
    )
    assert response.status_code == 403
    wallet.refresh_from_db()
    assert wallet.provider_account_id != "changed"


def test_deactivate_asks_for_a_reason_then_goes_through_the_service(lead):
    wallets = WalletFactory.create_batch(2)
    selected = [w.pk for w in wallets]
    page = lead.post(CHANGELIST, {"action": "deactivate_wallets", "_selected_action": selected})
    assert page.status_code == 200
    assert 'name="reason"' in page.content.decode()
    assert Wallet.objects.filter(is_active=False).count() == 0

    done = lead.post(
        CHANGELIST,
        {"action": "deactivate_wallets", "_selected_action": selected, "apply": "1", "reason": "fraud ticket 42"},
    )
    assert done.status_code == 302
    assert Wallet.objects.filter(is_active=False).count() == 2
    records = AuditRecord.objects.filter(action="deactivate_wallet")
    assert records.count() == 2
    record = records.first()
    assert (record.actor_type, record.actor_id) == ("staff", "lee")
    assert record.details["reason"] == "fraud ticket 42"
    assert record.request_id


def test_reactivate_through_the_action(lead):
    wallet = WalletFactory(is_active=False)
    lead.post(
        CHANGELIST,
        {"action": "reactivate_wallets", "_selected_action": [wallet.pk], "apply": "1", "reason": "cleared"},
    )
    wallet.refresh_from_db()
    assert wallet.is_active is True
    assert AuditRecord.objects.get(action="reactivate_wallet").details["reason"] == "cleared"


def test_action_without_reason_changes_nothing(lead):
    wallet = WalletFactory()
    response = lead.post(
        CHANGELIST, {"action": "deactivate_wallets", "_selected_action": [wallet.pk], "apply": "1", "reason": ""}
    )
    assert response.status_code == 200
    assert "This field is required" in response.content.decode()
    wallet.refresh_from_db()
    assert wallet.is_active is True
    assert AuditRecord.objects.count() == 0


def test_repeating_an_action_writes_no_second_record(lead):
    wallet = WalletFactory(is_active=False)
    lead.post(
        CHANGELIST,
        {"action": "deactivate_wallets", "_selected_action": [wallet.pk], "apply": "1", "reason": "again"},
    )
    assert AuditRecord.objects.count() == 0


def test_view_only_support_cannot_run_the_actions(support):
    wallet = WalletFactory()
    page = support.get(CHANGELIST)
    assert "deactivate_wallets" not in page.content.decode()
    support.post(
        CHANGELIST,
        {"action": "deactivate_wallets", "_selected_action": [wallet.pk], "apply": "1", "reason": "try"},
    )
    wallet.refresh_from_db()
    assert wallet.is_active is True
    assert AuditRecord.objects.count() == 0


def test_staff_without_any_permission_sees_nothing(client):
    client.force_login(staff_user("nobody", support=False))
    assert client.get(CHANGELIST).status_code == 403


def test_events_link_points_at_the_events_changelist_when_installed(support):
    wallet = WalletFactory()
    content = support.get(reverse("admin:wallets_wallet_change", args=[wallet.pk])).content.decode()
    try:
        events_url = reverse("admin:events_walletevent_changelist")
    except Exception:  # the events admin is not registered yet
        assert "This wallet&#x27;s events" not in content
    else:
        assert f"{events_url}?wallet={wallet.pk}" in content
