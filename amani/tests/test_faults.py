"""Fault injection against a live server: PostgreSQL connections killed mid-burst, and the
database unreachable. Every answer is a 2xx or a 503 envelope, nothing is half written,
and the service recovers without a restart.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from decimal import Decimal

import psycopg
import pytest
import requests
from django.db import connection, connections

from access.services import api_client_create
from amani.signing import HmacAuth
from audit.models import AuditRecord
from events.balances import balance_buckets_verify
from events.models import BalanceBucket, WalletEvent
from testing.servers import gunicorn_server
from wallets.tests.factories import WalletFactory

pytestmark = pytest.mark.django_db(transaction=True)

THREADS = 6
INGESTS_PER_THREAD = 30


def ingest_body(n: int) -> dict:
    return {
        "event_type": "deposit",
        "amount": f"{n}.25",
        "currency": "NGN",
        "provider_event_id": f"fault_evt_{n}",
        "occurred_at": "2026-11-20T14:02:18Z",
        "metadata": {"n": n},
    }


def post(session: requests.Session, url: str, body: dict) -> requests.Response:
    return session.post(url, data=json.dumps(body), headers={"Content-Type": "application/json"}, timeout=30)


def assert_503_envelope(response: requests.Response) -> None:
    assert response.status_code == 503, response.text
    assert response.json()["error"]["code"] == "service_unavailable"
    assert response.headers["Retry-After"]


def psycopg_connect() -> psycopg.Connection:
    params = connection.settings_dict
    return psycopg.connect(
        dbname=params["NAME"],
        user=params["USER"],
        password=params["PASSWORD"] or None,
        host=params["HOST"] or None,
        port=params["PORT"] or None,
        autocommit=True,
    )


class Killer(threading.Thread):
    """Terminates every other backend of the test database, over and over, until stopped."""

    def __init__(self, interval: float) -> None:
        super().__init__(daemon=True)
        self.interval = interval
        self.stop = threading.Event()
        self.killed = 0

    def run(self) -> None:
        with psycopg_connect() as conn:
            while not self.stop.is_set():
                rows = conn.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend'"
                ).fetchall()
                self.killed += sum(1 for (terminated,) in rows if terminated)
                time.sleep(self.interval)


@pytest.fixture
def wallet_and_auth():
    wallet = WalletFactory()
    _, issued = api_client_create(name="fault-client", scopes=["events:read", "events:write", "wallets:read"])
    return wallet, HmacAuth(issued.key_id, issued.secret)


def test_killed_connections_during_an_ingest_burst(live_server, wallet_and_auth):
    wallet, auth = wallet_and_auth
    url = f"{live_server.url}/api/v1/wallets/{wallet.public_id}/events/ingest"
    answers: dict[int, int] = {}
    unexpected: list[str] = []
    lock = threading.Lock()

    def burst(thread_index: int) -> None:
        session = requests.Session()
        session.auth = auth
        for i in range(INGESTS_PER_THREAD):
            n = thread_index * INGESTS_PER_THREAD + i + 1
            response = post(session, url, ingest_body(n))
            with lock:
                answers[n] = response.status_code
            if response.status_code == 503:
                assert_503_envelope(response)
            elif response.status_code not in (200, 201):
                unexpected.append(f"{n}: {response.status_code} {response.text[:300]}")

    connection.close()  # the test's own connection would be killed too
    killer = Killer(interval=0.15)
    killer.start()
    workers = [threading.Thread(target=burst, args=(t,)) for t in range(THREADS)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(120)
    killer.stop.set()
    killer.join(10)

    statuses = Counter(answers.values())
    print(f"faults: {killer.killed} connections killed; answers {dict(statuses)}")
    assert unexpected == []
    assert len(answers) == THREADS * INGESTS_PER_THREAD
    assert killer.killed > 0
    assert statuses[503] > 0, "no request was hit by a kill: the test proved nothing"

    # No partial writes: every stored event has its audit record, and each 201 is stored.
    stored = {e.provider_event_id: e for e in WalletEvent.objects.filter(wallet=wallet)}
    audited = set(
        AuditRecord.objects.filter(
            action="ingest_event", resource_id__in=[str(e.public_id) for e in stored.values()]
        ).values_list("resource_id", flat=True)
    )
    assert audited == {str(e.public_id) for e in stored.values()}
    created = {n for n, status in answers.items() if status == 201}
    assert {f"fault_evt_{n}" for n in created} <= set(stored)
    assert list(balance_buckets_verify(wallet=wallet)) == []

    # Recovery without a restart: the refused requests succeed when sent again.
    session = requests.Session()
    session.auth = auth
    for n in sorted(n for n, status in answers.items() if status == 503):
        response = post(session, url, ingest_body(n))
        assert response.status_code in (200, 201), response.text
    assert session.get(f"{live_server.url}/healthz", timeout=10).status_code == 200

    rows_lost = THREADS * INGESTS_PER_THREAD - WalletEvent.objects.filter(wallet=wallet).count()
    print(f"faults: rows lost {rows_lost}")
    assert rows_lost == 0
    expected_total = sum(Decimal(ingest_body(n)["amount"]) for n in answers)
    assert sum(b.ledger for b in BalanceBucket.objects.filter(wallet=wallet)) == expected_total
    assert sum(b.event_count for b in BalanceBucket.objects.filter(wallet=wallet)) == len(answers)
    assert AuditRecord.objects.filter(action="ingest_event").count() == len(answers)


def test_database_unreachable_is_503_then_recovers(live_server, wallet_and_auth):
    wallet, auth = wallet_and_auth
    session = requests.Session()
    session.auth = auth
    api_url = f"{live_server.url}/api/v1/wallets/{wallet.public_id}/events/ingest"
    settings_dict = connections.settings["default"]  # shared by every new connection, server threads included
    original_port = settings_dict["PORT"]
    connection.close()
    settings_dict["PORT"] = "1"  # nothing listens there: connection refused
    try:
        health = session.get(f"{live_server.url}/healthz", timeout=10)
        assert health.status_code == 503
        assert health.json()["database"] == "down"
        assert_503_envelope(post(session, api_url, ingest_body(1)))
        assert_503_envelope(session.get(f"{live_server.url}/api/v1/wallets/{wallet.public_id}", timeout=10))
    finally:
        settings_dict["PORT"] = original_port
    health = session.get(f"{live_server.url}/healthz", timeout=10)
    assert health.status_code == 200
    assert health.json() == {"status": "ok", "database": "ok"}
    assert post(session, api_url, ingest_body(1)).status_code == 201
    assert WalletEvent.objects.filter(wallet=wallet).count() == 1


def test_killed_persistent_connections_under_gunicorn(tmp_path, wallet_and_auth):
    """Production settings (persistent connections with health checks), two gunicorn workers,
    single and batch ingests: a killed idle connection costs nothing, a killed busy one a 503;
    a batch is all or nothing."""
    wallet, auth = wallet_and_auth
    connection.close()
    answers: dict[tuple[str, int], int] = {}
    unexpected: list[str] = []
    lock = threading.Lock()

    with gunicorn_server(workers=2, metrics_dir=tmp_path) as base:
        ingest_url = f"{base}/api/v1/wallets/{wallet.public_id}/events/ingest"
        batch_url = f"{base}/api/v1/events/batch"
        session = requests.Session()
        session.auth = auth
        for _ in range(6):  # every worker now holds a persistent connection
            assert session.get(f"{base}/api/v1/wallets/{wallet.public_id}", timeout=10).status_code == 200

        # Idle connections killed: the next requests reconnect (CONN_HEALTH_CHECKS), no error at all.
        with psycopg_connect() as conn:
            idle_killed = conn.execute(
                "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend'"
            ).fetchone()[0]
        assert idle_killed >= 1
        fresh = requests.Session()
        fresh.auth = auth
        assert [
            fresh.get(
                f"{base}/api/v1/wallets/{wallet.public_id}", timeout=10, headers={"Connection": "close"}
            ).status_code
            for _ in range(6)
        ] == [200] * 6

        def batch_body(n: int) -> dict:
            return {
                "events": [dict(ingest_body(10_000 + n * 5 + i), wallet_id=str(wallet.public_id)) for i in range(5)]
            }

        def burst(kind: str, thread_index: int) -> None:
            own = requests.Session()
            own.auth = auth
            for i in range(INGESTS_PER_THREAD):
                n = thread_index * INGESTS_PER_THREAD + i + 1
                if kind == "single":
                    response = post(own, ingest_url, ingest_body(n))
                    ok = response.status_code in (200, 201)
                else:
                    response = post(own, batch_url, batch_body(n))
                    ok = response.status_code == 200 and response.json()["summary"]["invalid"] == 0
                with lock:
                    answers[(kind, n)] = response.status_code
                if response.status_code == 503:
                    assert_503_envelope(response)
                elif not ok:
                    unexpected.append(f"{kind} {n}: {response.status_code} {response.text[:300]}")

        killer = Killer(interval=0.15)
        killer.start()
        workers = [threading.Thread(target=burst, args=("single", t)) for t in range(3)]
        workers += [threading.Thread(target=burst, args=("batch", t)) for t in range(3)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(180)
        killer.stop.set()
        killer.join(10)
        statuses = Counter(answers.values())
        print(f"faults (gunicorn): {idle_killed} idle + {killer.killed} busy connections killed; {dict(statuses)}")
        assert unexpected == []
        assert statuses[503] > 0, "no request was hit by a kill: the test proved nothing"

        # A batch is one transaction: all five items or none.
        stored = set(WalletEvent.objects.filter(wallet=wallet).values_list("provider_event_id", flat=True))
        for (kind, n), status in answers.items():
            if kind == "batch":
                present = sum(f"fault_evt_{10_000 + n * 5 + i}" in stored for i in range(5))
                assert present in (0, 5), f"batch {n} half written"
                if status == 200:
                    assert present == 5
            elif status == 201:
                assert f"fault_evt_{n}" in stored
        assert list(balance_buckets_verify(wallet=wallet)) == []

        # Recovery without a restart: everything refused goes through when sent again.
        for (kind, n), status in sorted(answers.items()):
            if status == 503:
                body = ingest_body(n) if kind == "single" else batch_body(n)
                response = post(session, ingest_url if kind == "single" else batch_url, body)
                assert response.status_code in (200, 201), response.text

    expected = 3 * INGESTS_PER_THREAD + 3 * INGESTS_PER_THREAD * 5
    rows_lost = expected - WalletEvent.objects.filter(wallet=wallet).count()
    print(f"faults (gunicorn): rows lost {rows_lost}")
    assert rows_lost == 0
    events = WalletEvent.objects.filter(wallet=wallet)
    audited = set(AuditRecord.objects.filter(action="ingest_event").values_list("resource_id", flat=True))
    for details in AuditRecord.objects.filter(action="ingest_events_batch").values_list("details", flat=True):
        audited.update(details["event_ids"])  # one record per batch names every event it created
    assert audited == {str(public_id) for public_id in events.values_list("public_id", flat=True)}
    assert sum(b.event_count for b in BalanceBucket.objects.filter(wallet=wallet)) == expected
    assert list(balance_buckets_verify(wallet=wallet)) == []
