"""Racing requests on real PostgreSQL connections: exactly one row per event, whatever the interleaving."""

from __future__ import annotations

import random
import threading
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection

from audit.models import AuditRecord
from conftest import SignedClient
from events.models import BalanceBucket, WalletEvent
from events.tests.factories import WalletFactory, event_body

RACERS = 32

pytestmark = pytest.mark.django_db(transaction=True)


def race(count: int, work: Callable[[int], Any]) -> list[Any]:
    """Run work(i) in `count` threads released together; return the results (or exceptions)."""
    barrier = threading.Barrier(count)
    results: list[Any] = [None] * count

    def run(i: int) -> None:
        try:
            barrier.wait()
            results[i] = work(i)
        except Exception as exc:  # reported by the assertions
            results[i] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


@pytest.fixture
def clients(make_api_key):
    issued = make_api_key()
    return [SignedClient(issued.key_id, issued.secret) for _ in range(RACERS)]


@pytest.mark.parametrize("key", ["event_id", "provider_event_id", "idempotency_key"])
def test_racing_identical_ingests_leave_one_row(clients, key):
    wallet = WalletFactory()
    body = event_body(provider_event_id=None)
    headers = {}
    if key == "event_id":
        body["event_id"] = str(uuid.uuid4())
    elif key == "provider_event_id":
        body["provider_event_id"] = "evt_race"
    else:
        headers["Idempotency-Key"] = "race-key"
    url = f"/api/v1/wallets/{wallet.public_id}/events/ingest"

    responses = race(RACERS, lambda i: clients[i].post(url, body, headers=headers))

    statuses = sorted(response.status_code for response in responses)
    assert statuses == [200] * (RACERS - 1) + [201], [getattr(r, "content", r) for r in responses]
    assert len({response.json()["id"] for response in responses}) == 1
    assert WalletEvent.objects.count() == 1
    assert AuditRecord.objects.filter(action="ingest_event").count() == 1
    assert BalanceBucket.objects.get(wallet=wallet).event_count == 1


def test_racing_different_events_all_land(clients):
    wallet = WalletFactory()
    url = f"/api/v1/wallets/{wallet.public_id}/events/ingest"

    responses = race(RACERS, lambda i: clients[i].post(url, event_body(provider_event_id=f"evt_{i}", amount="1.00")))

    assert [response.status_code for response in responses] == [201] * RACERS
    assert WalletEvent.objects.filter(wallet=wallet).count() == RACERS
    bucket = BalanceBucket.objects.get(wallet=wallet)
    assert (bucket.event_count, str(bucket.ledger)) == (RACERS, "32.0000")


def test_racing_conflicting_ingests_keep_one_and_name_it(clients):
    wallet = WalletFactory()
    url = f"/api/v1/wallets/{wallet.public_id}/events/ingest"

    responses = race(
        RACERS, lambda i: clients[i].post(url, event_body(provider_event_id="evt_x", amount=f"{1 + i % 2}.00"))
    )

    stored = WalletEvent.objects.get()
    for response in responses:
        if response.status_code == 409:
            assert response.json()["error"]["existing_event_id"] == str(stored.public_id)
        else:
            assert response.status_code in (200, 201)
            assert response.json()["id"] == str(stored.public_id)
    assert sum(response.status_code == 201 for response in responses) == 1


def test_racing_batches_with_overlapping_items_store_each_once(clients):
    """Shuffled orders make the batches wait on each other's rows; deadlocks are retried."""
    wallets = [WalletFactory() for _ in range(3)]
    items = [
        {**event_body(provider_event_id=f"evt_{n}", amount="1.00"), "wallet_id": str(wallets[n % 3].public_id)}
        for n in range(60)
    ]

    def send(i: int):
        batch = items[:]
        random.Random(i).shuffle(batch)
        return clients[i].post("/api/v1/events/batch", {"events": batch})

    racers = 8
    responses = race(racers, send)

    assert [response.status_code for response in responses] == [200] * racers, [r.content for r in responses]
    summaries = [response.json()["summary"] for response in responses]
    assert sum(summary["created"] for summary in summaries) == len(items)
    assert all(summary["conflict"] == summary["invalid"] == 0 for summary in summaries)
    assert WalletEvent.objects.count() == len(items)
    assert sum(BalanceBucket.objects.values_list("event_count", flat=True)) == len(items)
    assert AuditRecord.objects.filter(action="ingest_event").count() == len(items)
