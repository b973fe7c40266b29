"""Racing deliveries on real PostgreSQL connections: one event per provider reference, whatever the interleaving."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from audit.models import AuditRecord
from events.models import BalanceBucket, WalletEvent
from testing.clients import SignedClient
from testing.races import race
from webhooks.models import WebhookDelivery
from webhooks.tests.conftest import compact, deliver, sample, sample_bytes

RACERS = 16

pytestmark = pytest.mark.django_db(transaction=True)


def test_concurrent_retries_of_one_delivery_make_one_event(paystack_wallet):
    body = sample_bytes("paystack_charge_success")

    responses = race(RACERS, lambda i: deliver(Client(), "paystack", body))

    results = [response.json() for response in responses]
    assert sorted(result["status"] for result in results) == ["created"] + ["duplicate"] * (RACERS - 1), results
    event = WalletEvent.objects.get()
    assert {result["event_id"] for result in results} == {str(event.public_id)}
    assert WebhookDelivery.objects.filter(event=event).count() == RACERS
    assert AuditRecord.objects.filter(action="ingest_event").count() == 1
    assert BalanceBucket.objects.get(wallet=paystack_wallet).event_count == 1


def test_concurrent_retries_without_a_provider_time_agree_on_it(fincra_wallet):
    """Fincra without createdAt: every retry uses the first delivery's time, so none is a conflict."""
    payload = sample("fincra_collection_successful")
    del payload["data"]["createdAt"]
    body = compact(payload)

    responses = race(RACERS, lambda i: deliver(Client(), "fincra", body))

    statuses = sorted(response.json()["status"] for response in responses)
    assert statuses == ["created"] + ["duplicate"] * (RACERS - 1), statuses
    event = WalletEvent.objects.get()
    assert set(WebhookDelivery.objects.values_list("occurred_at", flat=True)) == {event.occurred_at}


def test_webhook_and_api_ingest_of_the_same_reference_race_to_one_event(make_api_key, flutterwave_wallet):
    issued = make_api_key()
    body = sample_bytes("flutterwave_charge_completed")
    payload = json.loads(body)["data"]
    ingest = {
        "event_type": "deposit",
        "amount": "100.00",
        "currency": "NGN",
        "provider_event_id": payload["flw_ref"],
        "occurred_at": payload["created_at"],
    }
    url = f"/api/v1/wallets/{flutterwave_wallet.public_id}/events/ingest"

    def work(i: int):
        if i % 2:
            return deliver(Client(), "flutterwave", body)
        return SignedClient(issued.key_id, issued.secret).post(url, ingest)

    responses = race(RACERS, work)

    event = WalletEvent.objects.get()
    webhook = [r.json() for i, r in enumerate(responses) if i % 2]
    api = [r for i, r in enumerate(responses) if not i % 2]
    assert all(result["event_id"] == str(event.public_id) for result in webhook), webhook
    assert all(r.status_code in (200, 201) and r.json()["id"] == str(event.public_id) for r in api)
    created = [w for w in webhook if w["status"] == "created"] + [r for r in api if r.status_code == 201]
    assert len(created) == 1
    assert BalanceBucket.objects.get(wallet=flutterwave_wallet).event_count == 1
