"""The hand-tuned request hot paths behave exactly as the ORM versions did."""

from __future__ import annotations

import threading

import pytest
from django.db import connection
from django.utils import timezone

from amani.clients import api_key_get, api_key_revoke, nonce_record
from amani.models import ApiKey


@pytest.mark.django_db
def test_api_key_get_returns_the_key_with_its_client(make_api_key):
    issued = make_api_key(["events:read", "wallets:write"])
    expected = ApiKey.objects.select_related("client").get(key_id=issued.key_id)
    key = api_key_get(key_id=issued.key_id)
    assert key == expected
    assert key.secret_encrypted == expected.secret_encrypted
    assert key.client == expected.client
    assert key.client.scopes == ["wallets:write", "events:read"]
    assert key.client.is_active is True
    assert key.created_at == expected.created_at
    assert key.is_usable()


@pytest.mark.django_db
def test_api_key_get_sees_a_revocation_at_once(make_api_key):
    issued = make_api_key()
    api_key_revoke(key=api_key_get(key_id=issued.key_id))
    assert api_key_get(key_id=issued.key_id).revoked_at is not None
    assert not api_key_get(key_id=issued.key_id).is_usable()


@pytest.mark.django_db
def test_api_key_get_unknown_is_none():
    assert api_key_get(key_id="ak_unknown") is None


@pytest.mark.django_db(transaction=True)
def test_nonce_outside_a_transaction_is_refused_from_another_connection():
    now = timezone.now()
    assert nonce_record(key_id="ak_1", nonce="n" * 20, now=now) is True
    seen: list[bool] = []

    def replay() -> None:
        try:
            seen.append(nonce_record(key_id="ak_1", nonce="n" * 20, now=now))
        finally:
            connection.close()

    thread = threading.Thread(target=replay)
    thread.start()
    thread.join()
    assert seen == [False]
    assert nonce_record(key_id="ak_2", nonce="n" * 20, now=now) is True


@pytest.mark.django_db(transaction=True)
def test_asynchronous_commit_stays_inside_the_nonce_statement():
    nonce_record(key_id="ak_1", nonce="m" * 20, now=timezone.now())
    with connection.cursor() as cursor:
        cursor.execute("SHOW synchronous_commit")
        assert cursor.fetchone() == ("on",)
