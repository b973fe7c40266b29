"""HMAC authentication: every 401 code of the contract, in the contract's order, and scopes."""

from __future__ import annotations

import math
import os
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.db import connection
from django.test import Client
from django.utils import timezone

from access.authentication import HmacAuthentication
from access.models import ApiKey, ApiNonce
from access.services import api_client_update, api_key_create, api_key_expire, api_key_revoke
from amani import signing
from testing.races import race

pytestmark = [pytest.mark.urls("amani.tests.urls")]

ECHO = "/api/v1/test/echo"
ROOT = Path(__file__).resolve().parents[2]


def header_for(issued, *, method="GET", path=ECHO, query="", body=b"", ts=None, nonce=None, secret=None) -> str:
    return signing.authorization_header(
        key_id=issued.key_id,
        secret=secret or issued.secret,
        method=method,
        path=path,
        query=query,
        body=body,
        ts=ts,
        nonce=nonce,
    )


def get(url: str, authorization: str | None = None, client: Client | None = None):
    headers = {"Authorization": authorization} if authorization is not None else {}
    return (client or Client()).get(url, headers=headers)


def assert_401(response, code: str) -> None:
    assert response.status_code == 401, response.content
    assert response["WWW-Authenticate"] == "HMAC-SHA256"
    body = response.json()
    assert body["error"]["code"] == code
    assert body["error"]["message"]
    assert set(body["error"]) == {"code", "message"}


@pytest.fixture
def issued(make_api_key):
    return make_api_key(["wallets:read", "wallets:write"])


def test_signed_request_gets_through(issued):
    response = get(ECHO, header_for(issued))
    assert response.status_code == 200
    assert response.json()["method"] == "GET"


def test_no_authorization_header_is_missing_credentials(db):
    assert_401(get(ECHO), "missing_credentials")


@pytest.mark.parametrize("header", ["Bearer abc", "Basic dXNlcjpwYXNz", 'HMAC-SHA1 keyId="x"', "Token"])
def test_another_scheme_is_missing_credentials(db, header):
    assert_401(get(ECHO, header), "missing_credentials")


def test_scheme_name_is_case_insensitive_and_parameters_come_in_any_order(issued):
    header = header_for(issued)
    credentials = signing.parse_authorization(header)
    reordered = (
        f'hmac-sha256 signature="{credentials.signature}",nonce="{credentials.nonce}" ,  '
        f'ts="{credentials.ts}",keyId="{credentials.key_id}"'
    )
    assert get(ECHO, reordered).status_code == 200


def test_scheme_may_be_followed_by_a_tab_or_several_spaces(issued):
    header = header_for(issued)
    assert get(ECHO, header.replace("HMAC-SHA256 ", "HMAC-SHA256\t", 1)).status_code == 200
    assert get(ECHO, header_for(issued).replace("HMAC-SHA256 ", "HMAC-SHA256   ", 1)).status_code == 200


@pytest.mark.parametrize(
    "mangle",
    [
        pytest.param(lambda h: "HMAC-SHA256", id="no-parameters"),
        pytest.param(lambda h: h.replace(', ts="', ', tz="'), id="unknown-parameter"),
        pytest.param(lambda h: h.split(", signature=")[0], id="missing-signature"),
        pytest.param(lambda h: h + ', nonce="abcdefghijklmnopqrst"', id="repeated-parameter"),
        pytest.param(lambda h: h.replace('ts="', 'ts="x'), id="ts-not-a-number"),
        pytest.param(lambda h: h.replace('nonce="', 'nonce="bad nonce!'), id="nonce-charset"),
        pytest.param(lambda h: h.replace('signature="', 'signature="A'), id="signature-uppercase-or-long"),
        pytest.param(lambda h: h.replace('"', ""), id="unquoted"),
        pytest.param(lambda h: h.replace(", ", " "), id="no-commas"),
    ],
)
def test_unparseable_header_is_malformed_credentials(issued, mangle):
    assert_401(get(ECHO, mangle(header_for(issued))), "malformed_credentials")


@pytest.mark.parametrize("nonce", ["a" * 15, "a" * 65])
def test_nonce_length_outside_16_to_64_is_malformed(issued, nonce):
    header = header_for(issued)
    credentials = signing.parse_authorization(header)
    assert_401(get(ECHO, header.replace(credentials.nonce, nonce)), "malformed_credentials")


def test_nonce_of_16_and_64_characters_is_accepted(issued):
    assert get(ECHO, header_for(issued, nonce="n" * 16)).status_code == 200
    assert get(ECHO, header_for(issued, nonce="N-_9" * 16)).status_code == 200


def test_unknown_key_id(issued):
    header = header_for(issued).replace(issued.key_id, "ak_000000000000000000000000")
    assert_401(get(ECHO, header), "unknown_key")


def test_revoked_key(issued):
    api_key_revoke(key=issued.key)
    assert_401(get(ECHO, header_for(issued)), "revoked_key")


def test_expired_key_is_revoked_key(issued):
    api_key_expire(key=issued.key, expires_at=timezone.now() - timedelta(seconds=1))
    assert_401(get(ECHO, header_for(issued)), "revoked_key")


def test_key_with_future_expiry_still_works(issued):
    api_key_expire(key=issued.key, expires_at=timezone.now() + timedelta(hours=1))
    assert get(ECHO, header_for(issued)).status_code == 200


def test_inactive_client_is_revoked_key(issued):
    client = issued.key.client
    api_client_update(client=client, scopes=client.scopes, is_active=False)
    assert_401(get(ECHO, header_for(issued)), "revoked_key")


@pytest.mark.parametrize("offset", [-301, 301, -10_000, 10**6])
def test_timestamp_outside_300_seconds_is_stale(issued, offset):
    # Rounded away from now, so that "301 s ahead" is at least 301 s ahead when it is signed
    # (int() of now + 301 can be 300.1 s ahead, inside the window).
    now = time.time()
    ts = math.ceil(now) + offset if offset > 0 else math.floor(now) + offset
    assert_401(get(ECHO, header_for(issued, ts=ts)), "stale_timestamp")


@pytest.mark.parametrize("offset", [-290, 290])
def test_timestamp_inside_the_window_is_accepted(issued, offset):
    assert get(ECHO, header_for(issued, ts=int(time.time()) + offset)).status_code == 200


def test_wrong_secret_is_bad_signature(issued):
    assert_401(get(ECHO, header_for(issued, secret="not-the-secret")), "bad_signature")


@pytest.mark.parametrize(
    "signed_as",
    [
        pytest.param({"method": "POST"}, id="method"),
        pytest.param({"path": "/api/v1/test/echo/"}, id="path"),
        pytest.param({"query": "a=1"}, id="query"),
        pytest.param({"body": b"{}"}, id="body"),
    ],
)
def test_signature_covers_method_path_query_and_body(issued, signed_as):
    assert_401(get(ECHO, header_for(issued, **signed_as)), "bad_signature")


def test_query_string_is_signed_exactly_as_sent(issued):
    query = "b=2&a=1&a=%2F&empty="
    response = get(f"{ECHO}?{query}", header_for(issued, query=query))
    assert response.status_code == 200
    reordered = get(f"{ECHO}?a=1&b=2&a=%2F&empty=", header_for(issued, query=query))
    assert_401(reordered, "bad_signature")


def test_percent_encoded_path_is_signed_as_sent(issued):
    path = "/api/v1/test/text/caf%C3%A9%20au%20lait"
    response = get(path, header_for(issued, path=path))
    assert response.status_code == 200
    assert response.json()["kwargs"] == {"word": "café au lait"}
    assert_401(get(path, header_for(issued, path="/api/v1/test/text/café au lait")), "bad_signature")


def test_post_body_is_signed(issued):
    body = b'{"amount": "1.00"}'
    authorization = header_for(issued, method="POST", body=body)
    response = Client().post(ECHO, body, content_type="application/json", headers={"Authorization": authorization})
    assert response.status_code == 201
    tampered = Client().post(
        ECHO,
        b'{"amount": "9.00"}',
        content_type="application/json",
        headers={"Authorization": authorization},
    )
    assert_401(tampered, "bad_signature")


def test_replayed_nonce(issued):
    header = header_for(issued)
    assert get(ECHO, header).status_code == 200
    assert_401(get(ECHO, header), "replayed_nonce")


def test_same_nonce_with_another_key_is_not_a_replay(issued):
    other = api_key_create(client=issued.key.client)
    nonce = "shared-nonce-0123456789"
    assert get(ECHO, header_for(issued, nonce=nonce)).status_code == 200
    assert get(ECHO, header_for(other, nonce=nonce)).status_code == 200


def test_several_active_keys_work_at_once_for_rotation(issued):
    new = api_key_create(client=issued.key.client)
    assert get(ECHO, header_for(issued)).status_code == 200
    assert get(ECHO, header_for(new)).status_code == 200
    api_key_revoke(key=issued.key)
    assert_401(get(ECHO, header_for(issued)), "revoked_key")
    assert get(ECHO, header_for(new)).status_code == 200


# --- order of the checks: parse, key, timestamp, signature, then nonce ------------------


def test_unknown_key_is_reported_before_a_stale_timestamp(issued):
    header = header_for(issued, ts=1).replace(issued.key_id, "ak_unknown")
    assert_401(get(ECHO, header), "unknown_key")


def test_revoked_key_is_reported_before_a_stale_timestamp_or_bad_signature(issued):
    api_key_revoke(key=issued.key)
    assert_401(get(ECHO, header_for(issued, ts=1, secret="wrong")), "revoked_key")


def test_stale_timestamp_is_reported_before_a_bad_signature(issued):
    assert_401(get(ECHO, header_for(issued, ts=int(time.time()) - 1000, secret="wrong")), "stale_timestamp")


def test_forged_request_does_not_use_up_the_nonce(issued):
    nonce = "legitimate-nonce-000111"
    assert_401(get(ECHO, header_for(issued, nonce=nonce, secret="forger")), "bad_signature")
    assert not ApiNonce.objects.filter(key_id=issued.key_id, nonce=nonce).exists()
    assert get(ECHO, header_for(issued, nonce=nonce)).status_code == 200


def test_replay_with_a_bad_signature_is_bad_signature(issued):
    nonce = "used-once-nonce-0123456"
    assert get(ECHO, header_for(issued, nonce=nonce)).status_code == 200
    assert_401(get(ECHO, header_for(issued, nonce=nonce, secret="wrong")), "bad_signature")


def test_stale_replay_is_stale_timestamp(issued):
    nonce = "old-nonce-000000000000"
    ApiNonce.objects.create(key_id=issued.key_id, nonce=nonce, seen_at=timezone.now())
    assert_401(get(ECHO, header_for(issued, nonce=nonce, ts=int(time.time()) - 400)), "stale_timestamp")


# --- scopes ---------------------------------------------------------------------------


def test_request_outside_the_clients_scopes_is_403_insufficient_scope(signed_client_for):
    reader = signed_client_for(["wallets:read"])
    assert reader.get(ECHO).status_code == 200
    response = reader.post(ECHO, {"a": 1})
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "insufficient_scope"


def test_client_without_the_read_scope_is_refused(signed_client_for):
    writer = signed_client_for(["events:read", "events:write"])
    response = writer.get(ECHO)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "insufficient_scope"


def test_scope_change_applies_to_the_next_request(signed_client_for):
    reader = signed_client_for(["wallets:read"])
    client = ApiKey.objects.get(key_id=reader.key_id).client
    api_client_update(client=client, scopes=["events:read"], is_active=True)
    assert reader.get(ECHO).status_code == 403


def test_scope_is_checked_only_after_authentication(signed_client_for):
    reader = signed_client_for(["wallets:read"])
    response = reader.request("POST", ECHO, {"a": 1}, sign=False)
    assert_401(response, "missing_credentials")


# --- bookkeeping ----------------------------------------------------------------------


def test_success_records_last_used_at(issued):
    assert issued.key.last_used_at is None
    assert get(ECHO, header_for(issued)).status_code == 200
    issued.key.refresh_from_db()
    assert issued.key.last_used_at is not None


def test_nonces_are_pruned_from_the_request_path(issued, monkeypatch):
    old = ApiNonce.objects.create(key_id=issued.key_id, nonce="x" * 20, seen_at=timezone.now() - timedelta(hours=1))
    recent = ApiNonce.objects.create(key_id=issued.key_id, nonce="y" * 20, seen_at=timezone.now())
    monkeypatch.setattr(HmacAuthentication, "_next_prune", 0.0)
    assert get(ECHO, header_for(issued)).status_code == 200
    assert not ApiNonce.objects.filter(pk=old.pk).exists()
    assert ApiNonce.objects.filter(pk=recent.pk).exists()
    # Within the interval the next request does not prune again.
    again = ApiNonce.objects.create(key_id=issued.key_id, nonce="z" * 20, seen_at=timezone.now() - timedelta(hours=1))
    assert get(ECHO, header_for(issued)).status_code == 200
    assert ApiNonce.objects.filter(pk=again.pk).exists()


# --- replay across separate database connections -------------------------------------


@pytest.mark.django_db(transaction=True)
def test_one_signed_request_raced_on_separate_connections_succeeds_exactly_once(make_api_key):
    issued = make_api_key(["wallets:read"])
    header = header_for(issued)
    racers = 8
    responses = race(racers, lambda _: get(ECHO, header))
    statuses = [response.status_code for response in responses]
    codes = [response.json()["error"]["code"] for response in responses if response.status_code != 200]
    assert sorted(statuses) == [200] + [401] * (racers - 1)
    assert codes == ["replayed_nonce"] * (racers - 1)
    assert ApiNonce.objects.filter(key_id=issued.key_id).count() == 1


REPLAY_CHILD = """
import sys, time
import django
from django.conf import settings
django.setup()
settings.ROOT_URLCONF = "amani.tests.urls"
from django.test import Client
from django.test.utils import setup_test_environment
setup_test_environment()
start_at, header = float(sys.argv[1]), sys.argv[2]
time.sleep(max(0.0, start_at - time.time()))
response = Client().get("/api/v1/test/echo", headers={"Authorization": header})
code = response.json().get("error", {}).get("code", "") if response.status_code != 200 else ""
print(response.status_code, code)
"""


@pytest.mark.django_db(transaction=True)
def test_one_signed_request_sent_from_separate_processes_succeeds_exactly_once(make_api_key):
    issued = make_api_key(["wallets:read"])
    header = header_for(issued)
    database = connection.settings_dict
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "amani.settings.test",
        "DATABASE_URL": (
            f"postgres://{database['USER']}:{database['PASSWORD'] or ''}@{database['HOST'] or '127.0.0.1'}:"
            f"{database['PORT'] or 5432}/{database['NAME']}"
        ),
    }
    start_at = time.time() + 3  # every process sends at the same instant, after its start-up
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", REPLAY_CHILD, str(start_at), header],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    outputs = [process.communicate(timeout=60) for process in processes]
    answers = sorted(stdout.strip() for stdout, _ in outputs)
    assert answers == ["200", "401 replayed_nonce", "401 replayed_nonce", "401 replayed_nonce"], outputs
