"""Racing requests on real PostgreSQL connections: exactly one row per event, whatever the interleaving."""

from __future__ import annotations

import datetime as dt
import random
import uuid
from decimal import Decimal

import pytest
from django.db import connection, transaction

from amani import metrics
from audit.models import AuditRecord
from conftest import SignedClient, race
from events import services
from events.models import BalanceBucket, WalletEvent
from events.tests.factories import WalletFactory, event_body

RACERS = 32

pytestmark = pytest.mark.django_db(transaction=True)


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


def test_racing_batches_with_overlapping_items_store_each_once(clients, monkeypatch):
    """Shuffled overlapping batches and single ingests wait on each other's keys but never deadlock.

    With one attempt, any deadlock PostgreSQL breaks would answer 503: the key locks
    (events.services, step 0) must make them impossible, not merely retried.
    """
    monkeypatch.setattr(services, "DEADLOCK_ATTEMPTS", 1)
    wallets = [WalletFactory() for _ in range(5)]
    items = []
    for n in range(300):
        body = {**event_body(provider_event_id=f"evt_{n}", amount="1.00"), "wallet_id": str(wallets[n % 5].public_id)}
        if n % 3 == 0:
            body["event_id"] = str(uuid.UUID(int=n + 1))
        if n % 4 == 0:
            body["idempotency_key"] = f"race-{n}"
        items.append(body)
    racers = 24
    plans: list[list[dict]] = []  # a one-item plan is a single ingest racing the batches
    for i in range(racers):
        rng = random.Random(i)
        if i % 6 == 5:
            plans.append([items[rng.randrange(len(items))]])
        else:
            plans.append(rng.sample(items, rng.randrange(100, len(items) + 1)))

    def send(i: int):
        if len(plans[i]) > 1:
            return clients[i].post("/api/v1/events/batch", {"events": plans[i]})
        body = dict(plans[i][0])
        wallet_id, key = body.pop("wallet_id"), body.pop("idempotency_key", None)
        headers = {"Idempotency-Key": key} if key else {}
        return clients[i].post(f"/api/v1/wallets/{wallet_id}/events/ingest", body, headers=headers)

    retries_before = metrics.event_ingestion_race_retries._value.get()
    responses = race(racers, send)

    statuses = [getattr(response, "status_code", response) for response in responses]
    assert all(status in (200, 201) for status in statuses), [getattr(r, "content", r) for r in responses]
    assert metrics.event_ingestion_race_retries._value.get() == retries_before
    summaries = [response.json()["summary"] for response, plan in zip(responses, plans, strict=True) if len(plan) > 1]
    assert all(summary["conflict"] == summary["invalid"] == 0 for summary in summaries)
    sent = {item["provider_event_id"] for plan in plans for item in plan}
    assert set(WalletEvent.objects.values_list("provider_event_id", flat=True)) == sent
    stored = WalletEvent.objects.count()
    assert stored == len(sent) == sum(summary["created"] for summary in summaries) + statuses.count(201)
    assert sum(BalanceBucket.objects.values_list("event_count", flat=True)) == stored
    assert AuditRecord.objects.filter(action="ingest_event").count() == stored


def _own_key_locks() -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid() AND classid = %s",
            [services._KEY_LOCK_NAMESPACE],
        )
        return cursor.fetchone()[0]


def test_key_locks_are_held_by_the_store_transaction_only():
    """Taken (ascending, one per stripe) when the store is its own transaction; gone at its commit.

    Inside a caller's transaction (the backfill's --dry-run) they are not taken: they would
    block every other writer of those stripes until that transaction ends.
    """
    wallet = WalletFactory()
    rows = [
        services.event_row_build(
            services.EventInput(
                event_id=uuid.uuid4(),
                event_type="deposit",
                amount=Decimal("1.00"),
                currency="NGN",
                provider_event_id=f"lock_{n}",
                occurred_at=dt.datetime(2026, 11, 20, tzinfo=dt.UTC),
                metadata={},
                provider=None,
                idempotency_key=f"lock-key-{n}",
            ),
            services.WalletRef.of(wallet),
            now=dt.datetime.now(dt.UTC),
        )
        for n in range(3)
    ]

    def lock_ids(rows: list) -> list[int]:
        return services.key_lock_ids((r.public_id, r.provider_event_id, r.idempotency_key) for r in rows)

    expected = lock_ids(rows)
    assert expected == sorted(set(expected)) and 1 <= len(expected) <= 9

    def store() -> int:
        services.event_rows_store(rows=rows[:2])
        return _own_key_locks()

    assert services.run_with_deadlock_retry(store) == len(lock_ids(rows[:2]))
    assert _own_key_locks() == 0  # released at commit
    with transaction.atomic():
        services.run_with_deadlock_retry(lambda: services.event_rows_store(rows=rows[2:]))
        assert _own_key_locks() == 0
    assert WalletEvent.objects.count() == 3
