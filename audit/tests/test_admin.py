"""The audit admin: read-only for everyone, exact search, cheap filters; the Support group."""

import uuid

import pytest
from django.contrib.auth.models import Permission
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from amani.paginator import EstimatedCountPaginator
from audit.models import AuditAction, AuditRecord, AuditResource
from audit.tests.factories import AuditRecordFactory
from audit.tests.support import staff_user, support_group
from testing import roles
from wallets.tests.factories import WalletFactory

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:audit_auditrecord_changelist")


@pytest.fixture
def support(client):
    client.force_login(staff_user("sam"))
    return client


def listed(response) -> set:
    assert response.status_code == 200
    return {record.pk for record in response.context["cl"].result_list}


def test_support_group_is_view_only_on_wallets_events_and_audit():
    permissions = set(support_group().permissions.values_list("content_type__app_label", "codename"))
    assert permissions == {
        ("wallets", "view_wallet"),
        ("events", "view_walletevent"),
        ("events", "view_providerbalancereport"),
        ("audit", "view_auditrecord"),
        ("webhooks", "view_webhookdelivery"),  # webhooks migration 0002
    }


def test_support_member_can_view_but_not_change(support):
    user = staff_user("viewer")
    assert user.has_perm("wallets.view_wallet")
    assert user.has_perm("audit.view_auditrecord")
    assert not user.has_perm("wallets.change_wallet")
    assert not user.has_perm("wallets.change_wallet_status")
    assert not user.has_perm("audit.delete_auditrecord")


def test_support_sees_records_newest_first(support):
    records = AuditRecordFactory.create_batch(3)
    response = support.get(CHANGELIST)
    assert [r.pk for r in response.context["cl"].result_list] == [r.pk for r in reversed(records)]


@pytest.mark.parametrize("field", ["resource_id", "user_id", "request_id"])
def test_search_by_exact_id(support, field):
    wanted = AuditRecordFactory()
    AuditRecordFactory.create_batch(2)
    assert listed(support.get(CHANGELIST, {"q": str(getattr(wanted, field))})) == {wanted.pk}


def test_search_is_exact(support):
    wanted = AuditRecordFactory(request_id="req-abcdef")
    assert listed(support.get(CHANGELIST, {"q": "req-abc"})) == set()
    assert listed(support.get(CHANGELIST, {"q": "req-abcdef"})) == {wanted.pk}


def test_filters_by_action_actor_type_and_resource_type(support):
    registered = AuditRecordFactory(action="register_wallet", actor_type="api_key", resource_type="wallet")
    deactivated = AuditRecordFactory(action="deactivate_wallet", actor_type="staff", resource_type="wallet")
    other = AuditRecordFactory(action="create_api_client", actor_type="command", resource_type="api_client")
    assert listed(support.get(CHANGELIST, {"action": "deactivate_wallet"})) == {deactivated.pk}
    assert listed(support.get(CHANGELIST, {"actor_type__exact": "api_key"})) == {registered.pk}
    assert listed(support.get(CHANGELIST, {"resource_type": "api_client"})) == {other.pk}
    page = support.get(CHANGELIST).content.decode()
    assert "?action=create_api_client" in page


def test_action_and_resource_type_filters_offer_every_value_recorded_or_not(support):
    with CaptureQueriesContext(connection) as queries:
        page = support.get(CHANGELIST).content.decode()
    assert all(f"?action={action}" in page for action in AuditAction.values)
    assert all(f"?resource_type={resource}" in page for resource in AuditResource.values)
    # Neither filter reads records to build its choices (it sampled the newest 1,000 resource types).
    sampled = 'SELECT "audit_auditrecord"."resource_type" FROM'
    assert not [q["sql"] for q in queries.captured_queries if q["sql"].startswith(sampled)]


def test_nobody_can_add_change_or_delete_records(admin_client):
    record = AuditRecordFactory(action="register_wallet")
    assert admin_client.get(reverse("admin:audit_auditrecord_add")).status_code == 403
    assert admin_client.post(reverse("admin:audit_auditrecord_delete", args=[record.pk])).status_code == 403
    change_url = reverse("admin:audit_auditrecord_change", args=[record.pk])
    assert admin_client.get(change_url).status_code == 200  # viewable, read-only
    assert admin_client.post(change_url, {"action": "tampered"}).status_code == 403
    assert "delete_selected" not in admin_client.get(CHANGELIST).content.decode()
    assert AuditRecord.objects.get(pk=record.pk).action == "register_wallet"


def test_superuser_has_no_write_permissions_in_the_audit_admin(admin_user, rf):
    from django.contrib.admin.sites import site

    model_admin = site._registry[AuditRecord]
    request = rf.get(CHANGELIST)
    request.user = admin_user
    assert not model_admin.has_add_permission(request)
    assert not model_admin.has_change_permission(request)
    assert not model_admin.has_delete_permission(request)
    assert model_admin.has_view_permission(request)


def test_staff_without_view_permission_is_refused(client):
    client.force_login(staff_user("nobody", support=False))
    assert client.get(CHANGELIST).status_code == 403


def test_staff_with_only_the_audit_permission_can_view(client):
    user = staff_user("auditor", support=False)
    user.user_permissions.add(Permission.objects.get(codename="view_auditrecord"))
    client.force_login(user)
    assert client.get(CHANGELIST).status_code == 200


class TinyCapPaginator(EstimatedCountPaginator):
    count_cap = 3


def test_paginator_caps_a_filtered_count():
    WalletFactory.create_batch(5, provider="fincra")
    from wallets.models import Wallet

    assert TinyCapPaginator(Wallet.objects.filter(provider="fincra").order_by("-id"), 2).count == 3
    assert TinyCapPaginator(Wallet.objects.filter(provider="paystack").order_by("-id"), 2).count == 0


def test_paginator_uses_the_planner_estimate_on_a_large_unfiltered_table():

    from wallets.models import Wallet

    WalletFactory.create_batch(5)
    roles.analyze("wallets_wallet")  # as the owner (testing.roles)
    # The estimate (5) is above this cap, so no COUNT runs; below the cap, the count is exact.
    assert TinyCapPaginator(Wallet.objects.order_by("-id"), 2).count == 5
    assert EstimatedCountPaginator(Wallet.objects.order_by("-id"), 2).count == 5


def test_audit_link_from_unknown_resource_lists_nothing(support):
    AuditRecordFactory()
    assert listed(support.get(CHANGELIST, {"resource_type": "wallet", "resource_id": str(uuid.uuid4())})) == set()
