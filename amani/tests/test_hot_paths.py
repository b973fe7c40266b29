"""The hand-tuned request hot paths behave exactly as the ORM versions did."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from access.models import ApiKey, ApiNonce
from access.services import (
    NonceOutcome,
    api_client_update,
    api_key_expire,
    api_key_lookup,
    api_key_revoke,
    nonce_record,
    secret_decrypt,
)


@pytest.mark.django_db
def test_api_key_lookup_returns_the_key_with_its_client_scopes(make_api_key):
    issued = make_api_key(["events:read", "wallets:write"])
    key = api_key_lookup(key_id=issued.key_id, now=timezone.now())
    assert key.key_id == issued.key_id
    assert key.secret_encrypted == ApiKey.objects.get(key_id=issued.key_id).secret_encrypted
    assert secret_decrypt(key.secret_encrypted) == issued.secret
    assert key.scopes == ["wallets:write", "events:read"]
    assert key.usable is True


@pytest.mark.django_db
def test_api_key_lookup_sees_a_revocation_at_once(make_api_key):
    issued = make_api_key()
    api_key_revoke(key=ApiKey.objects.get(key_id=issued.key_id))
    assert api_key_lookup(key_id=issued.key_id, now=timezone.now()).usable is False


@pytest.mark.django_db
def test_api_key_lookup_sees_an_expiry_and_an_inactive_client(make_api_key):
    issued = make_api_key()
    key = ApiKey.objects.get(key_id=issued.key_id)
    now = timezone.now()
    api_key_expire(key=key, expires_at=now + dt.timedelta(seconds=10))
    assert api_key_lookup(key_id=issued.key_id, now=now).usable is True
    assert api_key_lookup(key_id=issued.key_id, now=now + dt.timedelta(seconds=11)).usable is False
    api_key_expire(key=key, expires_at=None)
    api_client_update(client=key.client, scopes=key.client.scopes, is_active=False)
    assert api_key_lookup(key_id=issued.key_id, now=now).usable is False


@pytest.mark.django_db
def test_api_key_lookup_unknown_is_none():
    assert api_key_lookup(key_id="ak_unknown", now=timezone.now()) is None


@pytest.mark.django_db
def test_nonce_of_a_key_revoked_after_its_lookup_is_refused_and_not_spent(make_api_key):
    issued = make_api_key()
    api_key_revoke(key=ApiKey.objects.get(key_id=issued.key_id))
    assert nonce_record(key_id=issued.key_id, nonce="r" * 20, now=timezone.now()) is NonceOutcome.REVOKED
    assert not ApiNonce.objects.filter(key_id=issued.key_id).exists()


@pytest.mark.django_db
def test_nonce_touches_last_used_at_at_most_once_a_minute(make_api_key):
    issued = make_api_key()
    now = timezone.now()
    assert nonce_record(key_id=issued.key_id, nonce="a" * 20, now=now) is NonceOutcome.RECORDED
    assert ApiKey.objects.get(key_id=issued.key_id).last_used_at == now
    later = now + dt.timedelta(seconds=30)
    assert nonce_record(key_id=issued.key_id, nonce="b" * 20, now=later) is NonceOutcome.RECORDED
    assert ApiKey.objects.get(key_id=issued.key_id).last_used_at == now
    much_later = now + dt.timedelta(seconds=61)
    assert nonce_record(key_id=issued.key_id, nonce="c" * 20, now=much_later) is NonceOutcome.RECORDED
    assert ApiKey.objects.get(key_id=issued.key_id).last_used_at == much_later


@pytest.mark.django_db
def test_authentication_is_two_statements_key_then_nonce(signed_client):
    with CaptureQueriesContext(connection) as queries:
        assert signed_client.get("/api/v1/wallets?limit=1").status_code == 200
    statements = [query["sql"] for query in queries.captured_queries]
    assert "amani_apikey" in statements[0] and "amani_apinonce" not in statements[0]
    assert "amani_apinonce" in statements[1]
    assert not any("amani_api" in sql for sql in statements[2:])
    assert not any(sql.strip().upper() == "SELECT 1" for sql in statements)  # no per-request health check


@pytest.mark.django_db(transaction=True)
def test_nonce_outside_a_transaction_is_refused_from_another_connection(make_api_key):
    key_id, other_key_id = make_api_key().key_id, make_api_key().key_id
    now = timezone.now()
    assert nonce_record(key_id=key_id, nonce="n" * 20, now=now) is NonceOutcome.RECORDED
    seen: list[NonceOutcome] = []

    def replay() -> None:
        try:
            seen.append(nonce_record(key_id=key_id, nonce="n" * 20, now=now))
        finally:
            connection.close()

    thread = threading.Thread(target=replay)
    thread.start()
    thread.join()
    assert seen == [NonceOutcome.REPLAYED]
    assert nonce_record(key_id=other_key_id, nonce="n" * 20, now=now) is NonceOutcome.RECORDED


@pytest.mark.django_db(transaction=True)
def test_asynchronous_commit_stays_inside_the_nonce_statement(make_api_key):
    outcome = nonce_record(key_id=make_api_key().key_id, nonce="m" * 20, now=timezone.now())
    assert outcome is NonceOutcome.RECORDED
    with connection.cursor() as cursor:
        cursor.execute("SHOW synchronous_commit")
        assert cursor.fetchone() == ("on",)


def _prepared_statements(table: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_prepared_statements WHERE statement LIKE %s", [f"%{table}%"])
        return cursor.fetchone()[0]


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("prepared", [True, False])
def test_hot_path_statements_are_prepared_unless_switched_off(make_api_key, settings, prepared):
    """DATABASE_PREPARED_STATEMENTS=false (PgBouncer < 1.21) sends them unnamed: nothing stays prepared."""
    issued = make_api_key()
    connection.close()
    settings.DATABASE_PREPARED_STATEMENTS = prepared
    for _ in range(3):
        assert api_key_lookup(key_id=issued.key_id, now=timezone.now()).usable
    assert _prepared_statements("amani_apikey") == (1 if prepared else 0)


@pytest.mark.django_db
def test_the_ingest_statement_is_planned_once_not_per_request(signed_client):
    """plan_cache_mode=force_generic_plan (settings): PostgreSQL's default re-planned it every time."""
    from events.tests.factories import event_body
    from wallets.tests.factories import WalletFactory

    wallet = WalletFactory()
    for n in range(8):
        response = signed_client.post(
            f"/api/v1/wallets/{wallet.public_id}/events/ingest", event_body(provider_event_id=f"plan_{n}")
        )
        assert response.status_code == 201
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT generic_plans, custom_plans FROM pg_prepared_statements WHERE statement LIKE %s",
            ["WITH wallet AS%"],
        )
        assert cursor.fetchall() == [(8, 0)]
