"""A revoked key is refused by every gunicorn worker on its very next request (API.md, revoke_api_key).

Keys are read from the database on every request (only the decrypted secret is cached, per
ciphertext), so no process can serve a revoked key from memory. These tests prove it from
outside: four real workers, each holding a persistent connection and having served the key,
then a revocation by the command or by the admin, then every next request refused.
"""

from __future__ import annotations

import threading

import psycopg
import pytest
import requests
from django.core.management import call_command
from django.db import connection
from django.urls import reverse

from access.models import ApiKey
from access.services import api_client_create
from amani.signing import HmacAuth
from audit.models import AuditRecord
from testing.servers import gunicorn_server

WORKERS = 4
ROUNDS = 6  # requests per connection, before and after the revocation


def _server_backends() -> int:
    """Client connections to the test database other than this process's own."""
    params = connection.settings_dict
    host, port = params["HOST"] or "127.0.0.1", params["PORT"] or 5432
    with psycopg.connect(host=host, port=port, user=params["USER"], dbname=params["NAME"], autocommit=True) as conn:
        return conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND backend_type = 'client backend' AND pid <> pg_backend_pid() AND application_name = ''"
        ).fetchone()[0]


def _statuses_from_every_connection(base: str, auth: HmacAuth) -> list[tuple[int, str]]:
    """ROUNDS signed requests on each of 2 x WORKERS concurrent keep-alive sessions."""
    answers: list[tuple[int, str]] = []
    lock = threading.Lock()

    def client() -> None:
        session = requests.Session()
        session.auth = auth
        for _ in range(ROUNDS):
            response = session.get(f"{base}/api/v1/wallets?limit=1", timeout=30)
            code = response.json().get("error", {}).get("code", "") if response.status_code != 200 else ""
            with lock:
                answers.append((response.status_code, code))
        session.close()

    threads = [threading.Thread(target=client) for _ in range(2 * WORKERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not any(thread.is_alive() for thread in threads)
    return answers


@pytest.fixture
def issued(transactional_db):
    _, issued = api_client_create(name="revocation-test", scopes=["wallets:read"])
    return issued


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("revoke_by", ["command", "admin"])
def test_a_revoked_key_is_refused_by_every_worker_on_its_next_request(revoke_by, issued, admin_client, tmp_path):
    auth = HmacAuth(issued.key_id, issued.secret)
    with gunicorn_server(workers=WORKERS, metrics_dir=tmp_path / "metrics") as base:
        before = _statuses_from_every_connection(base, auth)
        assert before == [(200, "")] * (2 * WORKERS * ROUNDS)
        # Every worker has served the key and keeps its database connection (CONN_MAX_AGE).
        assert _server_backends() >= WORKERS

        if revoke_by == "command":
            call_command("revoke_api_key", issued.key_id)
        else:
            key = ApiKey.objects.get(key_id=issued.key_id)
            assert admin_client.post(reverse("admin:access_apikey_revoke", args=[key.pk])).status_code == 302

        after = _statuses_from_every_connection(base, auth)
        assert after == [(401, "revoked_key")] * (2 * WORKERS * ROUNDS)
    actor_type = "command" if revoke_by == "command" else "staff"
    assert (
        AuditRecord.objects.filter(action="revoke_api_key", resource_id=issued.key_id, actor_type=actor_type).count()
        == 1
    )


@pytest.mark.django_db
def test_revoke_api_key_exit_statuses(issued, capsys):
    call_command("revoke_api_key", issued.key_id)
    assert "Revoked" in capsys.readouterr().out
    assert ApiKey.objects.get(key_id=issued.key_id).revoked_at is not None

    call_command("revoke_api_key", issued.key_id)  # exit 0, with a notice
    assert "already revoked" in capsys.readouterr().out
    assert AuditRecord.objects.filter(action="revoke_api_key", resource_id=issued.key_id).count() == 1

    with pytest.raises(SystemExit) as exit_info:
        call_command("revoke_api_key", "ak_nobody")
    assert exit_info.value.code == 2
    assert "No API key" in capsys.readouterr().err
