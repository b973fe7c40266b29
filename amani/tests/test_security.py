"""Security review, as tests: headers, admin cookies and CSRF, scopes per endpoint,
replay and stale requests, and no secret in error bodies or the schema."""

from __future__ import annotations

import json
import time
import uuid

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.test import Client

from access.models import Scope
from access.services import api_key_revoke
from amani import signing
from testing.clients import SignedClient
from wallets.models import Wallet

ALL = list(Scope.values)
EVENT_BODY = {
    "event_type": "deposit",
    "amount": "10.00",
    "currency": "NGN",
    "provider_event_id": "sec_evt_1",
    "occurred_at": "2026-11-20T14:02:18Z",
}

# Every endpoint of API.md with the one scope it needs.
SCOPE_TABLE = [
    ("POST", "/api/v1/wallets", "wallets:write"),
    ("GET", "/api/v1/wallets", "wallets:read"),
    ("GET", "/api/v1/wallets/{wallet}", "wallets:read"),
    ("POST", "/api/v1/wallets/{wallet}/events/ingest", "events:write"),
    ("GET", "/api/v1/wallets/{wallet}/events", "events:read"),
    ("POST", "/api/v1/events/batch", "events:write"),
    ("GET", "/api/v1/wallets/{wallet}/balance", "events:read"),
    ("POST", "/api/v1/wallets/{wallet}/provider-balances", "events:write"),
    ("GET", "/api/v1/wallets/{wallet}/reconciliation?currency=NGN", "events:read"),
]


def body_for(path: str, wallet: Wallet) -> dict | None:
    if path.endswith("/ingest"):
        return EVENT_BODY
    if path.endswith("/batch"):
        return {"events": [dict(EVENT_BODY, wallet_id=str(wallet.public_id))]}
    if path.endswith("/provider-balances"):
        return {"currency": "NGN", "available": "1.00", "reported_at": "2026-11-20T14:02:18Z"}
    if path == "/api/v1/wallets":
        return {"user_id": str(uuid.uuid4()), "provider": "fincra", "provider_account_id": "sec-new"}
    return None


@pytest.mark.parametrize(("method", "path", "scope"), SCOPE_TABLE)
def test_every_endpoint_refuses_a_key_without_its_scope(signed_client_for, wallet, method, path, scope):
    url = path.format(wallet=wallet.public_id)
    lacking = signed_client_for([s for s in ALL if s != scope])
    response = lacking.request(method, url, body_for(url, wallet))
    assert response.status_code == 403, response.content
    assert response.json()["error"]["code"] == "insufficient_scope"


@pytest.mark.parametrize(("method", "path", "scope"), SCOPE_TABLE)
def test_every_endpoint_admits_a_key_with_only_its_scope(signed_client_for, wallet, method, path, scope):
    url = path.format(wallet=wallet.public_id)
    response = signed_client_for([scope]).request(method, url, body_for(url, wallet))
    assert response.status_code not in (401, 403), response.content
    assert response.status_code < 500


@pytest.mark.parametrize(("method", "path", "scope"), [row for row in SCOPE_TABLE if row[0] == "POST"])
def test_a_read_only_key_cannot_write_anything(signed_client_for, wallet, method, path, scope):
    read_only = signed_client_for(["wallets:read", "events:read"])
    response = read_only.request(method, path.format(wallet=wallet.public_id), body_for(path, wallet))
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "insufficient_scope"


def test_a_replayed_request_is_refused_and_writes_nothing(signed_client, wallet):
    url = f"/api/v1/wallets/{wallet.public_id}/events/ingest"
    raw = json.dumps(EVENT_BODY).encode()
    header = signing.authorization_header(
        key_id=signed_client.key_id, secret=signed_client.secret, method="POST", path=url, body=raw
    )
    first = signed_client.request("POST", url, raw, headers={"Authorization": header}, sign=False)
    again = signed_client.request("POST", url, raw, headers={"Authorization": header}, sign=False)
    assert first.status_code == 201
    assert again.status_code == 401
    assert again.json()["error"]["code"] == "replayed_nonce"
    assert again["WWW-Authenticate"] == "HMAC-SHA256"
    assert wallet.events.count() == 1


def test_a_captured_signature_cannot_be_moved_to_another_request(signed_client, wallet):
    url = f"/api/v1/wallets/{wallet.public_id}/events/ingest"
    raw = json.dumps(EVENT_BODY).encode()
    header = signing.authorization_header(
        key_id=signed_client.key_id, secret=signed_client.secret, method="POST", path=url, body=raw
    )
    tampered = json.dumps(dict(EVENT_BODY, amount="99999.00")).encode()
    response = signed_client.request("POST", url, tampered, headers={"Authorization": header}, sign=False)
    assert response.json()["error"]["code"] == "bad_signature"
    moved = signed_client.request("POST", "/api/v1/wallets", raw, headers={"Authorization": header}, sign=False)
    assert moved.json()["error"]["code"] == "bad_signature"
    assert wallet.events.count() == 0


def test_a_stale_request_is_refused(signed_client, wallet):
    header = signing.authorization_header(
        key_id=signed_client.key_id,
        secret=signed_client.secret,
        method="GET",
        path="/api/v1/wallets",
        ts=int(time.time()) - settings.HMAC_CLOCK_SKEW_SECONDS - 5,
    )
    response = signed_client.request("GET", "/api/v1/wallets", headers={"Authorization": header}, sign=False)
    assert response.json()["error"]["code"] == "stale_timestamp"


def test_a_revoked_key_is_refused_at_once(make_api_key):
    issued = make_api_key()
    client = SignedClient(issued.key_id, issued.secret)
    assert client.get("/api/v1/wallets").status_code == 200
    api_key_revoke(key=issued.key)
    assert client.get("/api/v1/wallets").json()["error"]["code"] == "revoked_key"


def test_error_bodies_never_contain_the_secret_or_the_expected_signature(signed_client, wallet):
    url = f"/api/v1/wallets/{wallet.public_id}/events/ingest"
    raw = json.dumps(dict(EVENT_BODY, metadata={"note": signed_client.secret})).encode()
    ts, nonce = int(time.time()), "n" * 24
    expected = signing.signature(
        signed_client.secret, signing.string_to_sign(ts=ts, nonce=nonce, method="POST", path=url, query="", body=raw)
    )
    wrong = f'HMAC-SHA256 keyId="{signed_client.key_id}", ts="{ts}", nonce="{nonce}", signature="{"0" * 64}"'
    bodies = [
        signed_client.request("POST", url, raw, headers={"Authorization": wrong}, sign=False).content,
        signed_client.request("POST", url, raw, headers={"Authorization": "HMAC-SHA256 junk"}, sign=False).content,
        signed_client.post(url, {"amount": signed_client.secret, "currency": "NGN"}).content,
        signed_client.post("/api/v1/wallets", {"user_id": signed_client.secret}).content,
    ]
    for body in bodies:
        assert signed_client.secret.encode() not in body
        assert expected.encode() not in body
        assert settings.SECRET_KEY.encode() not in body
        assert b"Traceback" not in body


def test_the_schema_holds_no_secret(client, make_api_key):
    issued = make_api_key()
    schema = client.get("/api/v1/schema", headers={"Accept": "application/vnd.oai.openapi+json"}).content
    docs = client.get("/api/v1/docs").content
    for text in (schema, docs):
        assert issued.secret.encode() not in text
        assert settings.SECRET_KEY.encode() not in text
    assert b"secret_encrypted" not in schema


@pytest.mark.parametrize("path", ["/healthz", "/api/v1/wallets", "/api/v1/nope", "/admin/login/", "/metrics"])
def test_security_headers_on_every_kind_of_response(signed_client, path):
    response = signed_client.get(path, headers={"X-Forwarded-Proto": "https"})
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"
    assert response["X-Frame-Options"] == "DENY"
    assert response["Strict-Transport-Security"].startswith("max-age=31536000")


def test_admin_cookies_are_secure_httponly_samesite_and_login_needs_csrf(db):
    user = get_user_model().objects.create_superuser("root", "root@example.com", "correct-horse-battery")
    strict = Client(enforce_csrf_checks=True)
    refused = strict.post("/admin/login/", {"username": "root", "password": "correct-horse-battery"})
    assert refused.status_code == 403  # no CSRF token

    page = strict.get("/admin/login/")
    csrf_cookie = page.cookies[settings.CSRF_COOKIE_NAME]
    assert csrf_cookie["secure"] and csrf_cookie["httponly"] and csrf_cookie["samesite"] == "Lax"
    token = page.context["csrf_token"]
    logged_in = strict.post(
        "/admin/login/?next=/admin/",
        {"username": user.username, "password": "correct-horse-battery", "csrfmiddlewaretoken": token},
    )
    assert logged_in.status_code == 302
    session = logged_in.cookies[settings.SESSION_COOKIE_NAME]
    assert session["secure"] and session["httponly"] and session["samesite"] == "Lax"
    assert int(session["max-age"]) <= 8 * 3600


def test_an_admin_session_is_no_api_credential(admin_client):
    response = admin_client.get("/api/v1/wallets")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "missing_credentials"
