"""API.md's authentication, checked over real HTTP (testing.contract): the HMAC scheme, its errors
and their order, nonces across workers, scopes, and a key printed by create_api_client."""

from __future__ import annotations

import hashlib
import json
import secrets
import time
import uuid

import pytest
import requests

from amani import signing
from amani.signing import HmacAuth
from testing.contract import JSON, TIMEOUT, Api, Creds, auth_error, error_of, http_get, manage, raw_header
from testing.races import race
from wallets.tests.factories import wallet_body

# Only so that the test database is set up: no test writes through the ORM (its
# transaction would be invisible to the server); everything goes through HTTP.
pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("header", [None, "Basic dXNlcjpwYXNz", "Bearer abc.def.ghi", "Token 123"])
def test_no_header_or_another_scheme_is_missing_credentials(base_url, header):
    headers = {} if header is None else {"Authorization": header}
    auth_error(http_get(f"{base_url}/api/v1/wallets", headers=headers, timeout=TIMEOUT), "missing_credentials")


@pytest.mark.parametrize(
    "header",
    [
        "HMAC-SHA256",
        'HMAC-SHA256 keyId="k", ts="1", nonce="n"',
        'HMAC-SHA256 keyId="k" ts="1" nonce="abcdefghijklmnop" signature="' + "0" * 64 + '"',
        'HMAC-SHA256 keyId="k", ts="soon", nonce="abcdefghijklmnop", signature="' + "0" * 64 + '"',
        'HMAC-SHA256 keyId="k", ts="1", nonce="short", signature="' + "0" * 64 + '"',
        'HMAC-SHA256 keyId="k", ts="1", nonce="abcdefghijklmnop", signature="' + "A" * 64 + '"',
        'HMAC-SHA256 keyId="k", ts="1", nonce="abcdefghijklmnop", signature="abc"',
    ],
    ids=["no-params", "missing-signature", "no-commas", "ts-not-number", "nonce-short", "sig-upper", "sig-short"],
)
def test_unparseable_header_is_malformed_credentials(base_url, header):
    response = http_get(f"{base_url}/api/v1/wallets", headers={"Authorization": header}, timeout=TIMEOUT)
    auth_error(response, "malformed_credentials")


def test_unknown_key_id(base_url):
    issued = Creds("ak_" + secrets.token_hex(8), "whatever")
    header = raw_header(issued, "GET", "/api/v1/wallets")
    auth_error(http_get(f"{base_url}/api/v1/wallets", headers={"Authorization": header}), "unknown_key")


@pytest.mark.parametrize("which", ["revoked", "expired"])
def test_revoked_or_expired_key(base_url, keys, which):
    issued = keys[which]
    response = http_get(f"{base_url}/api/v1/wallets", auth=HmacAuth(issued.key_id, issued.secret))
    auth_error(response, "revoked_key")


# Whole seconds are signed: a few seconds past the window keep truncation and latency out of the answer.
@pytest.mark.parametrize("offset", [-305, 305, -100_000])
def test_timestamp_outside_300_seconds_is_stale(base_url, key, offset):
    header = raw_header(key, "GET", "/api/v1/wallets", ts=int(time.time()) + offset)
    auth_error(http_get(f"{base_url}/api/v1/wallets", headers={"Authorization": header}), "stale_timestamp")


def test_timestamp_within_the_window_is_accepted(base_url, key):
    header = raw_header(key, "GET", "/api/v1/wallets", ts=int(time.time()) - 250)
    assert http_get(f"{base_url}/api/v1/wallets", headers={"Authorization": header}).status_code == 200


def test_same_nonce_twice_is_replayed_even_on_another_connection(base_url, key):
    header = raw_header(key, "GET", "/api/v1/wallets", query="limit=1")
    url = f"{base_url}/api/v1/wallets?limit=1"
    # Connection: close each time, so the two requests may land on different workers.
    first = http_get(url, headers={"Authorization": header, "Connection": "close"})
    assert first.status_code == 200
    auth_error(http_get(url, headers={"Authorization": header, "Connection": "close"}), "replayed_nonce")


def test_forged_request_does_not_use_up_the_nonce(base_url, key):
    nonce = secrets.token_urlsafe(24)
    forged = raw_header(Creds(key.key_id, "not-the-secret"), "GET", "/api/v1/wallets", nonce=nonce)
    auth_error(http_get(f"{base_url}/api/v1/wallets", headers={"Authorization": forged}), "bad_signature")
    genuine = raw_header(key, "GET", "/api/v1/wallets", nonce=nonce)
    assert http_get(f"{base_url}/api/v1/wallets", headers={"Authorization": genuine}).status_code == 200


@pytest.mark.parametrize(
    "tamper",
    ["body", "path", "query", "method", "secret"],
)
def test_anything_changed_after_signing_is_bad_signature(base_url, key, tamper):
    body = json.dumps(wallet_body()).encode()
    signed = {"method": "POST", "path": "/api/v1/wallets", "query": "", "body": body}
    sent = dict(signed)
    issued = key
    if tamper == "body":
        sent["body"] = body.replace(b"fincra_wallet", b"fincra_wallex")
    elif tamper == "path":
        signed["path"] = "/api/v1/wallets/"
    elif tamper == "query":
        signed["query"] = "a=1"
    elif tamper == "method":
        signed["method"] = "PUT"
    else:
        issued = Creds(key.key_id, key.secret + "x")
    header = raw_header(issued, **signed)
    response = requests.post(
        f"{base_url}{sent['path']}", data=sent["body"], headers={"Authorization": header, **JSON}, timeout=TIMEOUT
    )
    auth_error(response, "bad_signature")


@pytest.mark.parametrize(
    ("who", "stale", "forged", "expected"),
    [
        ("unknown", True, True, "unknown_key"),
        ("revoked", True, True, "revoked_key"),
        ("valid", True, True, "stale_timestamp"),
        ("valid", False, True, "bad_signature"),
    ],
)
def test_checks_run_in_the_documented_order(base_url, keys, who, stale, forged, expected):
    creds = {"unknown": Creds("ak_" + secrets.token_hex(8), "x"), "revoked": keys["revoked"], "valid": keys["all"]}[who]
    if forged:
        creds = Creds(creds.key_id, creds.secret + "-forged")
    ts = int(time.time()) - (1000 if stale else 0)
    header = raw_header(creds, "GET", "/api/v1/wallets", ts=ts)
    auth_error(http_get(f"{base_url}/api/v1/wallets", headers={"Authorization": header}), expected)


def test_scheme_is_case_insensitive_and_parameters_in_any_order(base_url, key):
    creds = signing.parse_authorization(raw_header(key, "GET", "/api/v1/wallets"))
    header = (
        f'hmac-sha256 signature="{creds.signature}",nonce="{creds.nonce}" ,  ts="{creds.ts}",keyId="{creds.key_id}"'
    )
    assert http_get(f"{base_url}/api/v1/wallets", headers={"Authorization": header}).status_code == 200


def test_signature_is_hmac_of_the_documented_string(base_url, key):
    """Built by hand from API.md, without amani.signing."""
    import hmac

    ts, nonce = str(int(time.time())), secrets.token_urlsafe(16)
    message = "\n".join(
        [
            "HMAC-SHA256",
            ts,
            nonce,
            "GET",
            "/api/v1/wallets",
            "limit=2&provider=fincra",
            hashlib.sha256(b"").hexdigest(),
        ]
    )
    signature = hmac.new(key.secret.encode(), message.encode(), hashlib.sha256).hexdigest()
    header = f'HMAC-SHA256 keyId="{key.key_id}", ts="{ts}", nonce="{nonce}", signature="{signature}"'
    response = http_get(f"{base_url}/api/v1/wallets?limit=2&provider=fincra", headers={"Authorization": header})
    assert response.status_code == 200, response.text


def test_rotation_several_active_keys_of_one_client(base_url, keys):
    for issued in keys["rotation"]:
        assert http_get(f"{base_url}/api/v1/wallets", auth=HmacAuth(issued.key_id, issued.secret)).status_code == 200


@pytest.mark.parametrize(
    ("scopes", "method", "path"),
    [
        (("wallets:read",), "POST", "wallets"),
        (("wallets:write",), "GET", "wallets"),
        (("wallets:read", "wallets:write"), "GET", "wallets/{wallet}/events"),
        (("events:read",), "POST", "wallets/{wallet}/events/ingest"),
        (("events:read",), "POST", "events/batch"),
        (("events:write",), "GET", "wallets/{wallet}/balance"),
        (("events:read",), "POST", "wallets/{wallet}/provider-balances"),
        (("events:write",), "GET", "wallets/{wallet}/reconciliation?currency=NGN"),
    ],
)
def test_request_outside_the_scopes_is_403(base_url, api, keys, scopes, method, path):
    wallet = api.wallet()
    limited = Api(base_url, keys[scopes])
    url = path.format(wallet=wallet["id"])
    response = limited.post(url, {}) if method == "POST" else limited.get(url)
    error_of(response, 403, "insufficient_scope")


def test_schema_and_docs_need_no_signature_but_other_api_paths_do(base_url):
    assert http_get(f"{base_url}/api/v1/schema").status_code == 200
    assert http_get(f"{base_url}/api/v1/docs").status_code == 200
    auth_error(http_get(f"{base_url}/api/v1/wallets/{uuid.uuid4()}"), "missing_credentials")


def test_one_nonce_sent_by_many_at_once_is_accepted_exactly_once(base_url, key):
    header = raw_header(key, "GET", "/api/v1/wallets", query="limit=1")
    url = f"{base_url}/api/v1/wallets?limit=1"
    responses = race(12, lambda _: http_get(url, headers={"Authorization": header, "Connection": "close"}))
    assert sorted(r.status_code for r in responses) == [200] + [401] * 11
    for response in responses:
        if response.status_code == 401:
            auth_error(response, "replayed_nonce")


def test_create_api_client_json_key_signs_requests_to_the_server(base_url):
    name = f"cli-{uuid.uuid4().hex[:8]}"
    run = manage(["create_api_client", name, "--scopes", "wallets:read,events:read", "--json"])
    assert run.returncode == 0, run.stderr.decode()
    printed = json.loads(run.stdout)  # the only output on stdout
    assert set(printed) == {"key_id", "secret", "scopes"}
    assert printed["scopes"] == ["wallets:read", "events:read"]
    session = requests.Session()
    session.auth = HmacAuth(printed["key_id"], printed["secret"])
    assert session.get(f"{base_url}/api/v1/wallets", timeout=TIMEOUT).status_code == 200
    error_of(session.post(f"{base_url}/api/v1/wallets", json=wallet_body(), timeout=TIMEOUT), 403, "insufficient_scope")
