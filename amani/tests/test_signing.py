"""The signing module shared by server and callers: the runbook's worked example, and HmacAuth."""

from __future__ import annotations

import hashlib
import hmac

import pytest
import requests

from amani import signing
from amani.signing import HmacAuth

# docs/runbooks/api_authentication.md shows exactly these values.
SECRET = "Zk3q9vXb7LwT2mRp8sNcY4hD6jFa1uGe5oKiQ0tBzWx"
KEY_ID = "ak_0123456789abcdef01234567"
TS = 1795262400  # 2026-11-21T12:00:00Z
NONCE = "n0nce-2026-11-21-a1b2c3"
BODY = (
    b'{"user_id": "6f1c2a8e-3b7d-4e59-9a0c-2d4b8e7f1a36", "provider": "fincra", '
    b'"provider_account_id": "fincra_wallet_123"}'
)
BODY_SHA256 = "54b1885c1e2619ad0e938f20fd3fee8e4644b564ca48027d7dea19c505845b81"
SIGNATURE = "46b74f26a3fde92422c4e9af528360dc050d92e8dab0676355004973e7355e7b"


def test_worked_example_string_to_sign():
    expected = f"HMAC-SHA256\n{TS}\n{NONCE}\nPOST\n/api/v1/wallets\n\n{BODY_SHA256}"
    assert hashlib.sha256(BODY).hexdigest() == BODY_SHA256
    assert (
        signing.string_to_sign(ts=TS, nonce=NONCE, method="post", path="/api/v1/wallets", query="", body=BODY)
        == expected
    )


def test_worked_example_signature_matches_an_independent_hmac():
    message = f"HMAC-SHA256\n{TS}\n{NONCE}\nPOST\n/api/v1/wallets\n\n{BODY_SHA256}".encode()
    assert hmac.new(SECRET.encode(), message, hashlib.sha256).hexdigest() == SIGNATURE
    header = signing.authorization_header(
        key_id=KEY_ID, secret=SECRET, method="POST", path="/api/v1/wallets", body=BODY, ts=TS, nonce=NONCE
    )
    assert header == (f'HMAC-SHA256 keyId="{KEY_ID}", ts="{TS}", nonce="{NONCE}", signature="{SIGNATURE}"')


def test_empty_body_hashes_as_empty_bytes():
    empty = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert signing.body_digest(None) == signing.body_digest(b"") == empty
    text = signing.string_to_sign(ts=1, nonce="x" * 16, method="GET", path="/p", query="a=1", body=None)
    assert text.split("\n") == ["HMAC-SHA256", "1", "x" * 16, "GET", "/p", "a=1", empty]
    assert not text.endswith("\n")


def test_hmac_auth_signs_a_prepared_request_the_way_the_server_checks_it():
    prepared = requests.Request(
        "POST", "http://example.test/api/v1/wallets?b=2&a=1", data=BODY, auth=HmacAuth(KEY_ID, SECRET)
    ).prepare()
    credentials = signing.parse_authorization(prepared.headers["Authorization"])
    assert credentials.key_id == KEY_ID
    message = signing.string_to_sign(
        ts=credentials.ts, nonce=credentials.nonce, method="POST", path="/api/v1/wallets", query="b=2&a=1", body=BODY
    )
    assert signing.signature(SECRET, message) == credentials.signature


def test_hmac_auth_uses_a_fresh_nonce_per_request():
    auth = HmacAuth(KEY_ID, SECRET)
    first = requests.Request("GET", "http://example.test/api/v1/wallets", auth=auth).prepare()
    second = requests.Request("GET", "http://example.test/api/v1/wallets", auth=auth).prepare()
    nonce = signing.parse_authorization(first.headers["Authorization"]).nonce
    assert nonce != signing.parse_authorization(second.headers["Authorization"]).nonce


@pytest.mark.urls("amani.tests.urls")
@pytest.mark.django_db(transaction=True)
def test_requests_with_hmac_auth_gets_through_a_real_http_server(live_server, make_api_key):
    issued = make_api_key(["wallets:read", "wallets:write"])
    session = requests.Session()
    session.auth = HmacAuth(issued.key_id, issued.secret)
    got = session.get(f"{live_server.url}/api/v1/test/echo", params={"z": "1 2", "a": "é"}, timeout=10)
    assert got.status_code == 200, got.text
    assert got.json()["query"] == {"z": "1 2", "a": "é"}
    posted = session.post(f"{live_server.url}/api/v1/test/echo", json={"amount": "1.00"}, timeout=10)
    assert posted.status_code == 201, posted.text
    assert posted.json()["body"] == {"amount": "1.00"}
    unsigned = requests.get(f"{live_server.url}/api/v1/test/echo", timeout=10)
    assert unsigned.status_code == 401
    assert unsigned.headers["WWW-Authenticate"] == "HMAC-SHA256"
