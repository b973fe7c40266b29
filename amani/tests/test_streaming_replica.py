"""A real streaming replica: DATABASE_REPLICA_URL against a hot standby that replays the primary's WAL.

The primary and the standby are two embedded PostgreSQL servers (the binaries `make run`
uses): the standby is a `pg_basebackup -R` of the primary (`primary_conninfo`,
`standby.signal`), so it is read-only and sees a change only once it has replayed it. A
real gunicorn serves with `DATABASE_URL` on the primary and `DATABASE_REPLICA_URL` on the
standby. Pausing the standby's replay (`pg_wal_replay_pause()`) makes its lag as long as
the test needs: what a caller then sees is exactly what docs/scaling.md promises.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
import requests

from amani.signing import HmacAuth
from scripts.embedded_postgres_cluster import (
    THROWAWAY_SETTINGS,
    cluster_init,
    cluster_start,
    cluster_stop,
    database_create,
    free_port,
    make_folder,
    pg,
    url,
    wait_until_accepting,
)

ROOT = Path(__file__).resolve().parents[2]
DATABASE = "amani"
TIMEOUT = 30.0


@dataclass(frozen=True)
class Replication:
    primary: str  # database URLs
    standby: str

    def caught_up(self) -> None:
        """Wait until the standby has replayed everything the primary has committed so far."""
        with psycopg.connect(self.primary, autocommit=True) as primary:
            # The insert position: with asynchronous commit the last commit may not be written yet.
            target = primary.execute("SELECT pg_current_wal_insert_lsn()").fetchone()[0]
        with psycopg.connect(self.standby, autocommit=True) as standby:
            wait_for(
                lambda: standby.execute("SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", [target]).fetchone()[0],
                "the standby to replay the primary's WAL",
            )

    def standby_execute(self, sql: str) -> object:
        with psycopg.connect(self.standby, autocommit=True) as standby:
            return standby.execute(sql).fetchone()[0]


def wait_for(condition, what: str) -> None:
    deadline = time.monotonic() + TIMEOUT
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


@pytest.fixture(scope="module")
def replication() -> Iterator[Replication]:
    root = Path(tempfile.mkdtemp(prefix="amani-replication-"))
    make_folder(root)  # owned by the server's user when root
    primary, standby = root / "primary", root / "standby"
    started: list[Path] = []
    try:
        cluster_init(primary, throwaway=True)
        primary_port = free_port()
        cluster_start(primary, port=primary_port, settings=THROWAWAY_SETTINGS)
        started.append(primary)
        database_create(url(primary_port), DATABASE)

        make_folder(standby)
        # -R: standby.signal and primary_conninfo (this port, user postgres) in postgresql.auto.conf.
        pg(
            "pg_basebackup",
            *("-D", str(standby), "-d", url(primary_port), "-X", "stream", "-R", "-c", "fast", "--no-sync"),
            cwd=root,
        )
        standby_port = free_port()
        cluster_start(standby, port=standby_port, settings={"hot_standby_feedback": "on"})
        started.append(standby)
        wait_until_accepting(url(standby_port, DATABASE))
        yield Replication(primary=url(primary_port, DATABASE), standby=url(standby_port, DATABASE))
    finally:
        for data in reversed(started):
            cluster_stop(data)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def server(replication: Replication) -> Iterator[tuple[str, requests.Session]]:
    """gunicorn with the primary as DATABASE_URL and the standby as DATABASE_REPLICA_URL; a signed session."""
    port = free_port()
    env = {
        **{key: value for key, value in os.environ.items() if key not in {"DJANGO_SETTINGS_MODULE", "DATABASE_URL"}},
        "DJANGO_SETTINGS_MODULE": "amani.settings.base",
        "DATABASE_URL": replication.primary,
        "DATABASE_REPLICA_URL": replication.standby,
        "SECRET_KEY": "streaming-replica-test-secret-key-0123456789-0123456789",
        "DEBUG": "false",
        "ALLOWED_HOSTS": "127.0.0.1",
        "GUNICORN_BIND": f"127.0.0.1:{port}",
        "WEB_CONCURRENCY": "2",
        "LOG_LEVEL": "WARNING",
    }

    def manage(*args: str) -> str:
        return subprocess.run(
            [sys.executable, "manage.py", *args], cwd=ROOT, env=env, check=True, capture_output=True, text=True
        ).stdout

    # Migrated on the primary only: the standby receives the schema as WAL.
    manage("migrate", "--noinput")
    scopes = "wallets:read,wallets:write,events:read,events:write"
    key = json.loads(manage("create_api_client", "replica-test", "--scopes", scopes, "--json"))
    base = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryFile() as log:
        gunicorn = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "amani.wsgi:application", "--config", "gunicorn.conf.py"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=log,
        )

        def answers() -> bool:
            assert gunicorn.poll() is None, "gunicorn exited"
            try:
                return requests.get(f"{base}/healthz", timeout=2).status_code == 200
            except requests.RequestException:  # not listening yet, or no worker booted yet
                return False

        try:
            wait_for(answers, "gunicorn")
            session = requests.Session()
            session.auth = HmacAuth(key["key_id"], key["secret"])
            yield base, session
        finally:
            gunicorn.terminate()
            gunicorn.wait(30)
            log.seek(0)
            sys.stderr.write(log.read().decode(errors="replace")[-5000:])


def _register(base: str, api: requests.Session) -> str:
    body = {"user_id": str(uuid.uuid4()), "provider": "fincra", "provider_account_id": f"acct_{uuid.uuid4().hex}"}
    response = api.post(f"{base}/api/v1/wallets", json=body, timeout=10)
    assert response.status_code == 201, response.text
    return response.json()["id"]


def _ingest(base: str, api: requests.Session, wallet: str, event_type: str, amount: str, event_id: str) -> int:
    event = {
        "event_type": event_type,
        "amount": amount,
        "currency": "NGN",
        "provider_event_id": event_id,
        "occurred_at": "2026-11-20T14:02:18Z",
    }
    return api.post(f"{base}/api/v1/wallets/{wallet}/events/ingest", json=event, timeout=10).status_code


def _ledger(base: str, api: requests.Session, wallet: str) -> list[str]:
    response = api.get(f"{base}/api/v1/wallets/{wallet}/balance", timeout=10)
    assert response.status_code == 200, response.text
    return [entry["ledger"] for entry in response.json()["balances"]]


def _event_count(base: str, api: requests.Session, wallet: str) -> int:
    response = api.get(f"{base}/api/v1/wallets/{wallet}/events", timeout=10)
    assert response.status_code == 200, response.text
    return len(response.json()["results"])


def test_the_standby_is_a_streaming_read_only_copy(replication):
    assert replication.standby_execute("SELECT pg_is_in_recovery()") is True
    with psycopg.connect(replication.primary, autocommit=True) as primary:
        states = primary.execute("SELECT state FROM pg_stat_replication").fetchall()
    assert states == [("streaming",)]
    with pytest.raises(psycopg.errors.ReadOnlySqlTransaction), psycopg.connect(replication.standby) as standby:
        standby.execute("CREATE TABLE not_here (id int)")


def test_reads_go_to_the_standby_writes_to_the_primary_and_a_lagging_standby_serves_stale_reads(replication, server):
    base, api = server
    wallet = _register(base, api)
    assert _ingest(base, api, wallet, "deposit", "1500.00", "evt_deposit") == 201
    replication.caught_up()
    assert _event_count(base, api, wallet) == 1
    assert _ledger(base, api, wallet) == ["1500.00"]

    replication.standby_execute("SELECT pg_wal_replay_pause()")
    wait_for(
        lambda: replication.standby_execute("SELECT pg_get_wal_replay_pause_state()") == "paused",
        "the standby's replay to pause",
    )
    try:
        # Writes succeed while the standby stands still: they go to the primary (the
        # standby is read-only, so a write sent there would fail with a 5xx).
        assert _ingest(base, api, wallet, "withdrawal", "500.00", "evt_withdrawal") == 201
        report = {"currency": "NGN", "available": "1000.00", "reported_at": "2026-11-21T00:00:00Z"}
        response = api.post(f"{base}/api/v1/wallets/{wallet}/provider-balances", json=report, timeout=10)
        assert response.status_code == 201, response.text
        fresh = _register(base, api)

        # Listing, balance and reconciliation come from the standby: as of its replay point.
        assert _event_count(base, api, wallet) == 1
        assert _ledger(base, api, wallet) == ["1500.00"]
        response = api.get(f"{base}/api/v1/wallets/{wallet}/reconciliation?currency=NGN", timeout=10)
        assert response.status_code == 404, response.text
        assert response.json()["error"]["code"] == "not_found"

        # Read-your-writes: whether a wallet exists, the wallet itself, the wallet list and
        # the dedup decision of a write are read on the primary.
        assert api.get(f"{base}/api/v1/wallets/{fresh}", timeout=10).status_code == 200
        assert _event_count(base, api, fresh) == 0  # 200 with no events yet, not a 404
        assert _ledger(base, api, fresh) == []
        listed = api.get(f"{base}/api/v1/wallets?limit=100", timeout=10).json()["results"]
        assert fresh in {item["id"] for item in listed}
        assert _ingest(base, api, wallet, "withdrawal", "500.00", "evt_withdrawal") == 200  # a replay, not a new event
    finally:
        replication.standby_execute("SELECT pg_wal_replay_resume()")

    replication.caught_up()
    assert _event_count(base, api, wallet) == 2
    assert _ledger(base, api, wallet) == ["1000.00"]
    response = api.get(f"{base}/api/v1/wallets/{wallet}/reconciliation?currency=NGN", timeout=10)
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "matched"
