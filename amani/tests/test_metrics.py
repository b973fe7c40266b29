"""/metrics: the runbook's counters, latency by route, auth failures, and multiprocess mode."""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from django.core.management import CommandError, call_command
from django.db import connection, transaction
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from amani import metrics
from testing.servers import REPO, gunicorn_server, workers_that_served
from wallets.models import Wallet
from wallets.tests.factories import WalletFactory, wallet_body


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_metrics_is_prometheus_text_without_authentication(client, db):
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=")
    names = {family.name for family in text_string_to_metric_families(response.content.decode())}
    assert {
        "amani_wallet_registrations",
        "amani_wallet_registration_race_retries",
        "amani_event_ingestions",
        "amani_event_batch_items",
        "amani_event_ingestion_race_retries",
        "amani_auth_failures",
        "amani_http_request_duration_seconds",
    } <= names


def test_metrics_only_answers_get(client, db):
    assert client.post("/metrics").status_code == 405


def test_registration_outcomes_are_counted(signed_client):
    before = {o: sample("amani_wallet_registrations_total", outcome=o) for o in metrics.REGISTRATION_OUTCOMES}
    body = wallet_body()
    assert signed_client.post("/api/v1/wallets", body).status_code == 201
    assert signed_client.post("/api/v1/wallets", body).status_code == 200
    claimed = dict(body, user_id=str(uuid.uuid4()))
    assert signed_client.post("/api/v1/wallets", claimed).status_code == 409
    assert signed_client.post("/api/v1/wallets", {"user_id": 1}).status_code == 400  # no decision: not counted
    after = {o: sample("amani_wallet_registrations_total", outcome=o) for o in metrics.REGISTRATION_OUTCOMES}
    assert {o: after[o] - before[o] for o in after} == {"created": 1, "replayed": 1, "conflict": 1, "error": 0}


def test_request_latency_is_observed_by_route_template_method_and_status_class(signed_client):
    labels = {"route": "/api/v1/wallets/<uuid_any:wallet_id>", "method": "GET", "status": "4xx"}
    before = sample("amani_http_request_duration_seconds_count", **labels)
    response = signed_client.get(f"/api/v1/wallets/{uuid.uuid4()}")
    assert response.status_code == 404
    assert sample("amani_http_request_duration_seconds_count", **labels) == before + 1
    assert sample("amani_http_request_duration_seconds_bucket", le="+Inf", **labels) == before + 1


@pytest.mark.parametrize(
    ("scopes", "header", "code"),
    [
        (None, None, "missing_credentials"),
        (None, 'HMAC-SHA256 keyId="x"', "malformed_credentials"),
        (["wallets:read"], "bad-signature", "bad_signature"),
        (["events:read"], "good", "insufficient_scope"),
    ],
)
def test_authentication_failures_are_counted_by_code(signed_client_for, client, scopes, header, code):
    before = sample("amani_auth_failures_total", code=code)
    if header in ("good", "bad-signature"):
        signer = signed_client_for(scopes)
        if header == "bad-signature":
            signer.secret = "not-the-secret"
        response = signer.get("/api/v1/wallets")
    else:
        response = client.get("/api/v1/wallets", headers={"Authorization": header} if header else {})
    assert response.json()["error"]["code"] == code
    assert sample("amani_auth_failures_total", code=code) == before + 1


@pytest.mark.django_db(transaction=True)
def test_a_lost_insert_race_is_counted_as_a_race_retry(signed_client):
    """A concurrent transaction holds the same wallet uncommitted: the request's insert waits
    on the unique index, fails with IntegrityError once it commits, and re-decides: a replay."""
    body = wallet_body()
    holding = threading.Event()
    release = threading.Event()

    def rival() -> None:
        try:
            with transaction.atomic():
                Wallet.objects.create(
                    user_id=body["user_id"], provider="fincra", provider_account_id=body["provider_account_id"]
                )
                holding.set()
                release.wait(10)
        finally:
            connection.close()

    thread = threading.Thread(target=rival)
    thread.start()
    assert holding.wait(10)
    before = sample("amani_wallet_registration_race_retries_total")
    timer = threading.Timer(1.0, release.set)  # commit while the request waits on the index
    timer.start()
    try:
        response = signed_client.post("/api/v1/wallets", body)
    finally:
        release.set()
        thread.join()
    assert response.status_code == 200, response.content
    assert response["Idempotent-Replayed"] == "true"
    assert sample("amani_wallet_registration_race_retries_total") == before + 1
    assert Wallet.objects.filter(provider_account_id=body["provider_account_id"]).count() == 1


def test_multiprocess_mode_merges_every_process(tmp_path):
    """Each process writes its own file; /metrics (metrics_text) adds them up."""
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path), "DJANGO_SETTINGS_MODULE": "amani.settings.test"}
    bump = (
        "import django; django.setup(); from amani import metrics; "
        "metrics.wallet_registration_observe(outcome='created'); metrics.auth_failure_observe(code='bad_signature')"
    )
    for _ in range(2):
        subprocess.run([sys.executable, "-c", bump], env=env, cwd=REPO, check=True, timeout=60)
    assert len(list(tmp_path.glob("counter_*.db"))) == 2
    show = "import django; django.setup(); from amani import metrics; print(metrics.metrics_text().decode())"
    text = subprocess.run(
        [sys.executable, "-c", show], env=env, cwd=REPO, check=True, timeout=60, capture_output=True, text=True
    ).stdout
    values = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    assert values[("amani_wallet_registrations_total", (("outcome", "created"),))] == 2
    assert values[("amani_auth_failures_total", (("code", "bad_signature"),))] == 2


@pytest.mark.django_db(transaction=True)
def test_metrics_add_up_every_gunicorn_worker(tmp_path):
    """Three gunicorn workers (gunicorn.conf.py's hooks) serve /healthz until at least two of them
    have answered (a condition, not a request count: on a busy machine one worker may take many
    in a row); any worker's /metrics then reports every request, and the directory is fresh."""
    metrics_dir = tmp_path / "prometheus"
    metrics_dir.mkdir()
    (metrics_dir / "counter_99999.db").write_bytes(b"stale file of an earlier run")
    with gunicorn_server(workers=3, metrics_dir=metrics_dir) as base:
        assert not (metrics_dir / "counter_99999.db").exists()
        labels = {"route": "/healthz", "method": "GET", "status": "2xx"}

        def call(_: int) -> int:
            return requests.get(f"{base}/healthz", timeout=30, headers={"Connection": "close"}).status_code

        sent = 0
        deadline = time.monotonic() + 120
        with ThreadPoolExecutor(max_workers=12) as pool:  # concurrent: a busy worker leaves work to the others
            while workers_that_served(metrics_dir, "/healthz") < 2:
                assert time.monotonic() < deadline, "in 120 s the requests never reached a second worker"
                assert list(pool.map(call, range(24))) == [200] * 24
                sent += 24
        for _ in range(6):  # new connections: each may land on any of the workers
            text = requests.get(f"{base}/metrics", timeout=30, headers={"Connection": "close"}).text
            counts = [
                s.value
                for family in text_string_to_metric_families(text)
                for s in family.samples
                if s.name == "amani_http_request_duration_seconds_count" and s.labels == labels
            ]
            assert counts == [float(sent)]


def event(n: int, **overrides) -> dict:
    body = {
        "event_type": "deposit",
        "amount": "10.00",
        "currency": "NGN",
        "provider_event_id": f"metrics_evt_{n}",
        "occurred_at": "2026-11-20T14:02:18Z",
    }
    body.update(overrides)
    return body


def test_ingestion_outcomes_are_counted(signed_client):
    wallet = WalletFactory()
    url = f"/api/v1/wallets/{wallet.public_id}/events/ingest"
    before = {o: sample("amani_event_ingestions_total", outcome=o) for o in metrics.INGESTION_OUTCOMES}
    assert signed_client.post(url, event(1)).status_code == 201
    assert signed_client.post(url, event(1)).status_code == 200
    assert signed_client.post(url, event(1, amount="11.00")).status_code == 409
    assert signed_client.post(url, event(2, amount="1e3")).status_code == 400
    assert signed_client.post(f"/api/v1/wallets/{uuid.uuid4()}/events/ingest", event(3)).status_code == 404
    after = {o: sample("amani_event_ingestions_total", outcome=o) for o in metrics.INGESTION_OUTCOMES}
    assert {o: after[o] - before[o] for o in after} == {
        "created": 1,
        "replayed": 1,
        "conflict": 1,
        "invalid": 2,
        "error": 0,
    }


def test_batch_items_are_counted_by_status(signed_client):
    wallet = WalletFactory()
    wallet_id = str(wallet.public_id)
    items = [
        event(10, wallet_id=wallet_id),
        event(11, wallet_id=wallet_id),
        event(10, wallet_id=wallet_id),  # duplicate of the first
        event(11, wallet_id=wallet_id, amount="12.00"),  # conflict with the second
        event(12, wallet_id=str(uuid.uuid4())),  # unknown wallet: invalid
        event(13, wallet_id=wallet_id, currency="XXX"),  # invalid
    ]
    before = {s: sample("amani_event_batch_items_total", status=s) for s in metrics.BATCH_STATUSES}
    response = signed_client.post("/api/v1/events/batch", {"events": items})
    assert response.status_code == 200
    assert response.json()["summary"] == {"created": 2, "duplicate": 1, "conflict": 1, "invalid": 2}
    after = {s: sample("amani_event_batch_items_total", status=s) for s in metrics.BATCH_STATUSES}
    assert {s: after[s] - before[s] for s in after} == {"created": 2, "duplicate": 1, "conflict": 1, "invalid": 2}


def _backfill(command: str, path, *args: str) -> None:
    with contextlib.suppress(CommandError):  # exit status 1: some row was refused
        call_command(command, str(path), *args, stdout=io.StringIO(), stderr=io.StringIO())


def _registrations() -> dict[str, float]:
    return {o: sample("amani_wallet_registrations_total", outcome=o) for o in metrics.REGISTRATION_OUTCOMES}


def _batch_items() -> dict[str, float]:
    return {s: sample("amani_event_batch_items_total", status=s) for s in metrics.BATCH_STATUSES}


def _delta(after: dict[str, float], before: dict[str, float]) -> dict[str, float]:
    return {name: after[name] - before[name] for name in after}


def test_backfill_wallets_counts_registrations_as_the_api_does(db, tmp_path):
    """The registration service counts its outcomes, whoever calls it; a dry run counts nothing."""
    rows = [wallet_body(provider_account_id=f"acct_backfill_{n}") for n in range(2)]
    claimed = dict(rows[0], user_id=str(uuid.uuid4()))
    path = tmp_path / "wallets.jsonl"
    path.write_text("\n".join(json.dumps(row) for row in [*rows, rows[0], claimed, {"user_id": 1}]) + "\n")
    before = _registrations()
    _backfill("backfill_wallets", path, "--dry-run")
    assert _delta(_registrations(), before) == dict.fromkeys(metrics.REGISTRATION_OUTCOMES, 0)
    _backfill("backfill_wallets", path)
    assert _delta(_registrations(), before) == {"created": 2, "replayed": 1, "conflict": 1, "error": 0}


def test_backfill_wallet_events_counts_records_by_status(db, tmp_path):
    wallet = Wallet.objects.create(user_id=uuid.uuid4(), provider="fincra", provider_account_id="metrics_backfill")
    wallet_id = str(wallet.public_id)
    records = [
        event(20, wallet_id=wallet_id),
        event(20, wallet_id=wallet_id),  # duplicate
        event(20, wallet_id=wallet_id, amount="12.00"),  # conflict
        event(21, wallet_id=str(uuid.uuid4())),  # unknown wallet: invalid
        event(22, wallet_id=wallet_id, currency="XXX"),  # invalid
    ]
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join(json.dumps(record) for record in records) + "\n")
    before = _batch_items()
    _backfill("backfill_wallet_events", path, "--dry-run")
    assert _delta(_batch_items(), before) == dict.fromkeys(metrics.BATCH_STATUSES, 0)
    _backfill("backfill_wallet_events", path)
    assert _delta(_batch_items(), before) == {"created": 1, "duplicate": 1, "conflict": 1, "invalid": 2}
