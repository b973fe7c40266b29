"""Racing requests on real PostgreSQL connections: exactly one row per event, whatever the interleaving."""

from __future__ import annotations

import datetime as dt
import random
import threading
import time
import uuid
from decimal import Decimal

import pytest
from django.db import connection, transaction

from amani import metrics
from amani.actors import Actor
from audit.models import AuditRecord
from events import queries, services
from events.models import BalanceBucket, WalletEvent
from events.tests.factories import event_body
from testing.clients import SignedClient
from testing.races import race
from wallets.tests.factories import WalletFactory

RACERS = 32

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def clients(make_api_key):
    issued = make_api_key()
    return [SignedClient(issued.key_id, issued.secret) for _ in range(RACERS)]


@pytest.mark.parametrize("key", ["event_id", "provider_event_id", "idempotency_key"])
def test_racing_identical_ingests_leave_one_row(clients, key):
    wallet = WalletFactory()
    body = event_body(provider_event_id=...)
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
    """Shuffled overlapping batches and single ingests wait on each other's rows but never deadlock.

    With one attempt, any deadlock PostgreSQL breaks would answer 503: the canonical insert
    order of batches (events.services.batch_insert_order) must make them impossible, not
    merely retried.
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
    audited = AuditRecord.objects.filter(action="ingest_event").count()
    for details in AuditRecord.objects.filter(action="ingest_events_batch").values_list("details", flat=True):
        audited += len(details["event_ids"])
    assert audited == stored


def _batch_rows(wallet, tag: str, count: int) -> list[services.EventRow]:
    now = dt.datetime.now(dt.UTC)
    return [
        services.event_row_build(
            services.EventInput(
                event_type="deposit",
                amount=Decimal("1.00"),
                currency="NGN",
                occurred_at=dt.datetime(2026, 11, 20, tzinfo=dt.UTC),
                provider_event_id=f"{tag}_{n}",
                idempotency_key=f"{tag}-key-{n}",
            ),
            services.WalletRef.of(wallet),
            now=now,
        )
        for n in range(count)
    ]


def test_batches_with_disjoint_keys_run_side_by_side():
    """A batch whose transaction is still open does not hold up another batch with other keys.

    The first batch's rows are inserted and left uncommitted while the second batch, on
    another connection, stores 1,000 events of its own: it must finish while the first
    is still open (with the 256 key-lock stripes of before it waited for that commit).
    """
    first_wallet, second_wallet = WalletFactory(), WalletFactory()
    first_rows, second_rows = _batch_rows(first_wallet, "left", 1000), _batch_rows(second_wallet, "right", 1000)
    first_inserted, second_done = threading.Event(), threading.Event()
    outcome: dict[str, object] = {}

    def first() -> None:
        try:
            with transaction.atomic():
                inserted = queries.events_insert_audited(
                    rows=first_rows, actor=Actor.system(), action="test", resource_type="test", batch_id=uuid.uuid4()
                )
                outcome["first_inserted"] = len(inserted)
                first_inserted.set()
                outcome["second_done_while_first_open"] = second_done.wait(timeout=30)
        finally:
            connection.close()

    def second() -> None:
        try:
            assert first_inserted.wait(timeout=30)
            inserted = queries.events_insert_audited(
                rows=second_rows, actor=Actor.system(), action="test", resource_type="test", batch_id=uuid.uuid4()
            )
            outcome["second_inserted"] = len(inserted)
            second_done.set()
        finally:
            connection.close()

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert outcome == {"first_inserted": 1000, "second_inserted": 1000, "second_done_while_first_open": True}
    assert WalletEvent.objects.count() == 2000
    assert sum(BalanceBucket.objects.values_list("event_count", flat=True)) == 2000


def test_a_batch_sharing_a_key_with_an_open_batch_waits_and_stores_nothing_twice():
    """The other side: a shared key makes the second batch wait for the first, then count it a duplicate."""
    wallet = WalletFactory()
    rows = _batch_rows(wallet, "shared", 10)
    replay = _batch_rows(wallet, "shared", 10)[::-1]  # the same events, in the opposite order
    first_inserted = threading.Event()
    second_pid: list[int] = []
    outcome: dict[str, object] = {}

    def first() -> None:
        try:
            with transaction.atomic():
                queries.events_insert_audited(
                    rows=rows, actor=Actor.system(), action="test", resource_type="test", batch_id=uuid.uuid4()
                )
                first_inserted.set()
                # Wait for the condition, not for time: the replay's backend queued on a lock this
                # open transaction holds (pg_locks is read live, unlike pg_stat_activity).
                outcome["second_waited_on_a_lock"] = _waits_on_a_lock(second_pid, timeout=30)
                outcome["second_finished_while_first_open"] = not second.is_alive()
        finally:
            connection.close()

    def store_replay() -> None:
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_backend_pid()")
                second_pid.append(cursor.fetchone()[0])
            assert first_inserted.wait(timeout=30)
            ordered = [replay[position] for position in services.batch_insert_order(replay)]
            outcome["second_inserted"] = len(
                queries.events_insert_audited(
                    rows=ordered, actor=Actor.system(), action="test", resource_type="test", batch_id=uuid.uuid4()
                )
            )
        finally:
            connection.close()

    second = threading.Thread(target=store_replay)
    opener = threading.Thread(target=first)
    second.start()  # before the opener, which asks whether it is still alive
    opener.start()
    opener.join(60)
    second.join(60)
    assert outcome == {
        "second_waited_on_a_lock": True,
        "second_finished_while_first_open": False,
        "second_inserted": 0,
    }
    assert WalletEvent.objects.count() == 10


def test_batch_insert_order_is_the_same_whatever_the_request_order():
    wallet = WalletFactory()
    rows = _batch_rows(wallet, "order", 50)
    for row in rows:
        row.public_id = None  # server-generated ids differ per request: they must not matter
    shuffled = rows[:]
    random.Random(7).shuffle(shuffled)

    def keys(batch: list[services.EventRow]) -> list[str | None]:
        return [batch[position].provider_event_id for position in services.batch_insert_order(batch)]

    assert keys(rows) == keys(shuffled)


def test_batch_insert_order_keeps_rows_sharing_keys_in_request_order():
    wallet = WalletFactory()
    rows = _batch_rows(wallet, "group", 3)
    rows[2].idempotency_key = rows[0].idempotency_key  # the last row shares a key with the first
    rows[2].provider_event_id = "a_first_in_sort_order"
    order = services.batch_insert_order(rows)
    assert order.index(0) < order.index(2)


def _waits_on_a_lock(pids: list[int], *, timeout: float) -> bool:
    """Whether the backend whose pid lands in `pids` comes to wait on a lock within `timeout` seconds."""
    deadline = time.monotonic() + timeout
    with connection.cursor() as cursor:
        while time.monotonic() < deadline:
            if pids:
                cursor.execute("SELECT EXISTS (SELECT 1 FROM pg_locks WHERE pid = %s AND NOT granted)", [pids[0]])
                if cursor.fetchone()[0]:
                    return True
            time.sleep(0.01)
    return False
