"""Unmatched deliveries decided again: `manage.py replay_webhooks`, the admin action, and the wallet console's read."""

from __future__ import annotations

from io import StringIO

import pytest
from django.contrib.auth.models import Permission
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse

from audit.models import AuditRecord
from audit.tests.support import staff_user
from events.console import TimelineFilters, wallet_timeline
from events.models import WalletEvent
from wallets.tests.factories import WalletFactory
from webhooks.models import WebhookDelivery
from webhooks.tests.conftest import compact, deliver, sample, sample_bytes

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:webhooks_webhookdelivery_changelist")


def replay(*args: str) -> str:
    out = StringIO()
    call_command("replay_webhooks", *args, stdout=out)
    return out.getvalue().strip()


@pytest.fixture
def unmatched(client):
    """Two deliveries (a delivery and its retry) of a Paystack charge and one Fincra collection, no wallets yet."""
    paystack = sample_bytes("paystack_charge_success")
    for body, provider in [(paystack, "paystack"), (paystack, "paystack")]:
        assert deliver(client, provider, body).json()["status"] == "unmatched"
    payload = sample("fincra_collection_successful")
    del payload["data"]["createdAt"]
    assert deliver(client, "fincra", compact(payload)).json()["status"] == "unmatched"


def test_replay_decides_unmatched_deliveries_once_the_wallet_exists(unmatched):
    wallet = WalletFactory(provider="paystack", provider_customer_id="CUS_qo38as2hpsgk2r0")

    assert replay("--provider", "paystack") == "replayed=2 created=1 duplicate=1 conflict=0 unmatched=0 invalid=0"

    event = WalletEvent.objects.get()
    assert event.wallet == wallet and event.provider_event_id == "qTPrJoy9Bx"
    paystack = WebhookDelivery.objects.filter(provider="paystack").order_by("id")
    assert [(d.outcome, d.event_id, d.wallet_id) for d in paystack] == [
        ("created", event.public_id, wallet.pk),
        ("duplicate", event.public_id, wallet.pk),
    ]
    assert WebhookDelivery.objects.get(provider="fincra").outcome == "unmatched"
    records = AuditRecord.objects.filter(action="replay_webhook_delivery").order_by("id")
    assert [(r.actor_type, r.actor_id, r.details["from"], r.details["to"]) for r in records] == [
        ("command", "replay_webhooks", "unmatched", "created"),
        ("command", "replay_webhooks", "unmatched", "duplicate"),
    ]
    assert AuditRecord.objects.get(action="ingest_event").actor_id == "replay_webhooks"
    # Nothing is unmatched any more for paystack; the fincra delivery still waits for its wallet.
    assert replay() == "replayed=1 created=0 duplicate=0 conflict=0 unmatched=1 invalid=0"
    assert AuditRecord.objects.filter(action="replay_webhook_delivery").count() == 2  # no change, no record


def test_replayed_fincra_delivery_without_created_at_keeps_its_first_received_time(unmatched):
    delivery = WebhookDelivery.objects.get(provider="fincra")
    WalletFactory(provider="fincra", provider_account_id="19c2ea4b66ea3j92188ab2de")

    assert replay("--provider", "fincra") == "replayed=1 created=1 duplicate=0 conflict=0 unmatched=0 invalid=0"

    assert WalletEvent.objects.get().occurred_at == delivery.received_at


def test_replay_with_an_unknown_provider_is_refused():
    with pytest.raises(CommandError):
        call_command("replay_webhooks", "--provider", "stripe", stdout=StringIO(), stderr=StringIO())


def test_admin_lists_deliveries_filtered_by_provider_and_outcome(client, unmatched):
    deliver(client, "fincra", sample_bytes("fincra_collection_failed"))
    client.force_login(staff_user("sam"))  # the Support group sees deliveries (migration 0002)

    def listed(**params: str) -> list[tuple[str, str]]:
        response = client.get(CHANGELIST, params)
        assert response.status_code == 200
        return sorted((d.provider, d.outcome) for d in response.context["cl"].result_list)

    assert listed(provider="paystack") == [("paystack", "unmatched")] * 2
    assert listed(outcome="ignored") == [("fincra", "ignored")]
    assert listed(provider="fincra", outcome="unmatched") == [("fincra", "unmatched")]
    assert len(listed(q="qTPrJoy9Bx")) == 2
    delivery = WebhookDelivery.objects.get(outcome="ignored")
    page = client.get(reverse("admin:webhooks_webhookdelivery_change", args=[delivery.pk]))
    assert page.status_code == 200 and b"as89h9n9a-hs89-hihass-a868-8sih98nsu" in page.content


def test_admin_shows_a_stored_body_of_any_depth_without_a_500(client):
    # Stored before the bound, or written directly: the page shows it as received, unformatted.
    deep = '{"a": ' * 900 + "1" + "}" * 900
    delivery = WebhookDelivery.objects.create(provider="fincra", body=deep, outcome="ignored")
    client.force_login(staff_user("sam"))
    page = client.get(reverse("admin:webhooks_webhookdelivery_change", args=[delivery.pk]))
    assert page.status_code == 200 and b"{&quot;a&quot;: {&quot;a&quot;" in page.content


def test_admin_replay_action_needs_its_permission_and_calls_the_replay_service(client, unmatched):
    WalletFactory(provider="paystack", provider_customer_id="CUS_qo38as2hpsgk2r0")
    selected = list(WebhookDelivery.objects.values_list("pk", flat=True))
    action = {"action": "replay_deliveries", "_selected_action": selected}
    user = staff_user("sam")
    client.force_login(user)
    client.post(CHANGELIST, action)
    assert not WalletEvent.objects.exists()  # Support may look, not replay

    user.user_permissions.add(Permission.objects.get(codename="replay_webhookdelivery"))
    response = client.post(CHANGELIST, action, follow=True)

    assert response.status_code == 200
    messages = [str(m) for m in response.context["messages"]]
    assert any("replayed=3 created=1 duplicate=1 conflict=0 unmatched=1 invalid=0" in m for m in messages), messages
    assert WalletEvent.objects.count() == 1
    assert AuditRecord.objects.filter(action="replay_webhook_delivery", actor_type="staff", actor_id="sam").count() == 2


def test_wallet_console_timeline_pages_a_wallets_deliveries_latest_first(client, paystack_wallet):
    body = sample_bytes("paystack_charge_success")
    for _ in range(5):
        deliver(client, "paystack", body)
    deliver(client, "fincra", sample_bytes("fincra_collection_failed"))  # not this wallet's

    only_deliveries = TimelineFilters(kind="webhook")
    first = wallet_timeline(wallet=paystack_wallet, filters=only_deliveries, limit=3)
    rest = wallet_timeline(wallet=paystack_wallet, filters=only_deliveries, limit=3, cursor=first.next_cursor)

    rows = first.rows + rest.rows
    expected = list(WebhookDelivery.objects.filter(wallet=paystack_wallet).order_by("-received_at", "-id"))
    assert [row.pk for row in rows] == [d.pk for d in expected] and len(rows) == 5
    assert rest.next_cursor is None
    assert sum(row.title.endswith(": created") for row in rows) == 1
    # Interleaved with the event it created when no kind is chosen.
    kinds = {row.kind for row in wallet_timeline(wallet=paystack_wallet, filters=TimelineFilters(), limit=50).rows}
    assert {"webhook", "event"} <= kinds
