"""API.md, checked from outside: real HTTP to gunicorn, signed with amani.signing.HmacAuth.

One gunicorn (four workers, gunicorn.conf.py, DEBUG off) per module serves the test database; the
tests talk to it only over HTTP, as the acceptance client does. Keys are created
directly in the database (the admin's job) before the first test; what the server
writes is committed, and the app tables are truncated when the module ends. (A
flush after every test, as transactional tests do, would triple the run time.)
"""

from __future__ import annotations

import datetime as dt
import hashlib
import http.client
import json
import os
import secrets
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import pytest
import requests
from django.apps import apps
from django.conf import settings
from django.db import connection
from prometheus_client.parser import text_string_to_metric_families

from access.models import ApiKey
from access.services import api_client_create, api_key_create, api_key_revoke
from amani import signing
from amani.json_bounds import METADATA_MAX_DEPTH
from amani.signing import HmacAuth
from amani.tests import roles

REPO = Path(__file__).resolve().parents[2]
ALL_SCOPES = ["wallets:read", "wallets:write", "events:read", "events:write"]
TIMEOUT = 30
JSON = {"Content-Type": "application/json"}

WALLET_FIELDS = {
    "id",
    "user_id",
    "provider",
    "provider_account_id",
    "provider_customer_id",
    "metadata",
    "is_active",
    "created_at",
    "updated_at",
}
EVENT_FIELDS = {
    "id",
    "wallet_id",
    "provider",
    "event_type",
    "amount",
    "currency",
    "provider_event_id",
    "metadata",
    "occurred_at",
    "created_at",
}
BALANCE_FIELDS = {"currency", "ledger", "held", "available", "event_count", "last_event_at"}

# Only so that the test database is set up: no test writes through the ORM (its
# transaction would be invisible to the server); everything goes through HTTP.
pytestmark = pytest.mark.django_db

SCOPE_SETS = [
    ("wallets:read",),
    ("wallets:write",),
    ("wallets:read", "wallets:write"),
    ("events:read",),
    ("events:write",),
]


# --------------------------------------------------------------------------- server


class Creds(NamedTuple):
    key_id: str
    secret: str


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _database_url(params: dict[str, Any]) -> str:
    auth = params["USER"] + (f":{params['PASSWORD']}" if params.get("PASSWORD") else "")
    return f"postgres://{auth}@{params['HOST'] or '127.0.0.1'}:{params['PORT'] or 5432}/{params['NAME']}"


@pytest.fixture(scope="module")
def base_url(django_db_setup, django_db_blocker, tmp_path_factory) -> Iterator[str]:
    """gunicorn serving the test database in production mode, as `make run` would."""
    port = _free_port()
    env = {
        **{name: value for name, value in os.environ.items() if name != "DJANGO_SETTINGS_MODULE"},
        "DATABASE_URL": _database_url(connection.settings_dict),
        # The same key as the test process: API secrets are encrypted with a key derived from it.
        "SECRET_KEY": settings.SECRET_KEY,
        "DEBUG": "false",
        "ALLOWED_HOSTS": "127.0.0.1",
        "GUNICORN_BIND": f"127.0.0.1:{port}",
        "WEB_CONCURRENCY": "4",
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path_factory.mktemp("prometheus")),
        "LOG_LEVEL": "WARNING",
    }
    log = tmp_path_factory.mktemp("gunicorn") / "gunicorn.log"
    with log.open("wb") as log_file:
        server = subprocess.Popen(
            [str(Path(sys.executable).with_name("gunicorn")), "amani.wsgi:application", "--config", "gunicorn.conf.py"],
            cwd=REPO,
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if http_get(f"{base}/healthz", timeout=5).status_code == 200:
                    break
            except requests.RequestException:
                pass
            assert server.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "gunicorn did not start:\n" + log.read_text()
            time.sleep(0.2)
        yield base
    finally:
        server.terminate()
        server.wait(30)
        with django_db_blocker.unblock(), roles.database_owner(), connection.cursor() as cursor:
            tables = [
                model._meta.db_table
                for label in ("amani", "wallets", "events", "audit")
                for model in apps.get_app_config(label).get_models()
                if model._meta.managed
            ]
            cursor.execute(f"TRUNCATE {', '.join(tables)} CASCADE")


@pytest.fixture(scope="module")
def keys(base_url, django_db_blocker) -> dict[Any, Creds]:
    """Keys committed before any test: "all", each of SCOPE_SETS, "revoked", "expired",
    "rotation" (two active keys of one client)."""

    def issue(scopes: list[str]) -> tuple[Any, Creds]:
        client, issued = api_client_create(name=f"contract-{uuid.uuid4().hex[:12]}", scopes=scopes)
        return client, Creds(issued.key_id, issued.secret)

    made: dict[Any, Any] = {}
    with django_db_blocker.unblock():
        made["all"] = issue(ALL_SCOPES)[1]
        for scopes in SCOPE_SETS:
            made[scopes] = issue(list(scopes))[1]
        made["revoked"] = issue(ALL_SCOPES)[1]
        api_key_revoke(key=ApiKey.objects.get(key_id=made["revoked"].key_id))
        client, first = issue(["wallets:read"])
        second = api_key_create(client=client)
        made["rotation"] = (first, Creds(second.key_id, second.secret))
        expired = api_key_create(client=client, expires_at=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1))
        made["expired"] = Creds(expired.key_id, expired.secret)
    return made


@pytest.fixture(scope="module")
def key(keys) -> Creds:
    return keys["all"]


@pytest.fixture(scope="module")
def api(base_url, key) -> Api:
    return Api(base_url, key)


class Api:
    """`requests` with HmacAuth against /api/v1/; every call returns the raw response."""

    def __init__(self, base: str, issued: Creds) -> None:
        self.base = base
        self.session = requests.Session()
        self.session.auth = HmacAuth(issued.key_id, issued.secret)

    def url(self, path: str) -> str:
        return f"{self.base}/api/v1/{path.lstrip('/')}"

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return self.session.get(self.url(path), timeout=TIMEOUT, **kwargs)

    def post(self, path: str, body: Any = None, **kwargs: Any) -> requests.Response:
        if body is not None:
            kwargs["data"] = body if isinstance(body, bytes | str) else json.dumps(body)
            kwargs["headers"] = {**JSON, **kwargs.get("headers", {})}
        return self.session.post(self.url(path), timeout=TIMEOUT, **kwargs)

    def request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        return self.session.request(method, self.url(path), timeout=TIMEOUT, **kwargs)

    def wallet(self, **overrides: Any) -> dict[str, Any]:
        response = self.post("wallets", wallet_body(**overrides))
        assert response.status_code == 201, response.text
        return response.json()

    def ingest(self, wallet_id: str, body: dict[str, Any], **kwargs: Any) -> requests.Response:
        return self.post(f"wallets/{wallet_id}/events/ingest", body, **kwargs)


def wallet_body(**overrides: Any) -> dict[str, Any]:
    body = {
        "user_id": str(uuid.uuid4()),
        "provider": "fincra",
        "provider_account_id": f"fincra_wallet_{uuid.uuid4().hex}",
        "provider_customer_id": "customer_456",
        "metadata": {"kyc_verified": True},
    }
    body.update(overrides)
    return {name: value for name, value in body.items() if value is not ...}


def event_body(**overrides: Any) -> dict[str, Any]:
    body = {
        "event_type": "deposit",
        "amount": "1500.00",
        "currency": "NGN",
        "provider_event_id": f"fincra_evt_{uuid.uuid4().hex}",
        "occurred_at": "2026-11-20T14:02:18Z",
        "metadata": {},
    }
    body.update(overrides)
    return {name: value for name, value in body.items() if value is not ...}


def http_get(url: str, **kwargs: Any) -> requests.Response:
    """An unsigned (or hand-signed) GET."""
    kwargs.setdefault("timeout", TIMEOUT)
    return requests.get(url, **kwargs)  # noqa: S113 - the timeout is set just above


def error_of(response: requests.Response, status: int, code: str) -> dict[str, Any]:
    """Assert the envelope with this status and code; returns the error object."""
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}, body
    error = body["error"]
    assert error["code"] == code, body
    assert isinstance(error["message"], str) and error["message"]
    assert ("fields" in error) == (code == "validation_error"), body
    return error


def parse_rfc3339(text: str) -> dt.datetime:
    value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    assert value.tzinfo is not None, text
    return value


# --------------------------------------------------------------------------- authentication


def raw_header(issued: Creds, method: str, path: str, query: str = "", body: bytes = b"", **kw: Any) -> str:
    return signing.authorization_header(
        key_id=issued.key_id, secret=issued.secret, method=method, path=path, query=query, body=body, **kw
    )


def auth_error(response: requests.Response, code: str) -> None:
    error_of(response, 401, code)
    assert response.headers["WWW-Authenticate"] == "HMAC-SHA256"


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


def race(count: int, send) -> list[requests.Response]:
    """`send()` from `count` threads released together; their responses, in thread order."""
    barrier = threading.Barrier(count)
    responses: list[Any] = [None] * count

    def run(index: int) -> None:
        barrier.wait()
        responses[index] = send()

    threads = [threading.Thread(target=run, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(TIMEOUT)
    return responses


def test_one_nonce_sent_by_many_at_once_is_accepted_exactly_once(base_url, key):
    header = raw_header(key, "GET", "/api/v1/wallets", query="limit=1")
    url = f"{base_url}/api/v1/wallets?limit=1"
    responses = race(12, lambda: http_get(url, headers={"Authorization": header, "Connection": "close"}))
    assert sorted(r.status_code for r in responses) == [200] + [401] * 11
    for response in responses:
        if response.status_code == 401:
            auth_error(response, "replayed_nonce")


# --------------------------------------------------------------------------- conventions


def test_every_error_is_the_envelope_for_an_unknown_api_path(api):
    error_of(api.get("nope"), 404, "not_found")


@pytest.mark.parametrize("path", ["wallets/not-a-uuid", "wallets/123", "wallets/not-a-uuid/events"])
def test_a_path_id_that_is_not_a_uuid_is_404(api, path):
    error_of(api.get(path), 404, "not_found")


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
@pytest.mark.parametrize("path", ["/api/v1/nope", "/api/v1/wallets/not-a-uuid", "/api/v1/wallets/x/events/ingest"])
def test_a_body_method_on_an_unknown_path_is_the_404_envelope_not_a_csrf_page(base_url, key, method, path):
    body = b"{}"
    header = raw_header(key, method, path, body=body)
    response = requests.request(
        method, f"{base_url}{path}", data=body, headers={"Authorization": header, **JSON}, timeout=TIMEOUT
    )
    error_of(response, 404, "not_found")


def test_unknown_wallet_is_404(api):
    error_of(api.get(f"wallets/{uuid.uuid4()}"), 404, "not_found")
    error_of(api.get(f"wallets/{uuid.uuid4()}/events"), 404, "not_found")
    error_of(api.ingest(str(uuid.uuid4()), event_body()), 404, "not_found")
    error_of(api.get(f"wallets/{uuid.uuid4()}/balance"), 404, "not_found")


def test_upper_case_uuid_in_the_path_finds_the_wallet(api):
    wallet = api.wallet()
    upper = wallet["id"].upper()
    response = api.get(f"wallets/{upper}")
    assert response.status_code == 200, response.text
    assert response.json()["id"] == wallet["id"]
    assert api.ingest(upper, event_body()).status_code == 201
    assert len(api.get(f"wallets/{upper}/events").json()["results"]) == 1
    assert api.get(f"wallets/{upper}/balance").json()["wallet_id"] == wallet["id"]


@pytest.mark.parametrize(
    ("method", "path"),
    [("DELETE", "wallets"), ("PUT", "wallets"), ("PATCH", "wallets/{wallet}"), ("POST", "wallets/{wallet}"),
     ("GET", "wallets/{wallet}/events/ingest"), ("GET", "events/batch"), ("DELETE", "wallets/{wallet}/balance")],
)  # fmt: skip
def test_wrong_method_is_405(api, method, path):
    wallet = api.wallet()
    kwargs: dict[str, Any] = {"data": b"{}", "headers": JSON} if method in ("PUT", "PATCH", "POST") else {}
    error_of(api.request(method, path.format(wallet=wallet["id"]), **kwargs), 405, "method_not_allowed")


def test_body_with_another_content_type_is_415(api):
    body = json.dumps(wallet_body())
    for content_type in ("text/plain", "application/x-www-form-urlencoded", "application/xml"):
        response = api.post("wallets", data=body, headers={"Content-Type": content_type})
        error_of(response, 415, "unsupported_media_type")


def test_body_with_no_content_type_is_415(api):
    request = requests.Request("POST", api.url("wallets"), data=json.dumps(wallet_body()).encode())
    prepared = api.session.prepare_request(request)
    prepared.headers.pop("Content-Type", None)
    assert "Content-Type" not in prepared.headers
    error_of(api.session.send(prepared, timeout=TIMEOUT), 415, "unsupported_media_type")


def test_json_with_charset_is_accepted(api):
    response = api.post("wallets", wallet_body(), headers={"Content-Type": "application/json; charset=utf-8"})
    assert response.status_code == 201, response.text


@pytest.mark.parametrize(
    "raw",
    [b"{", b"[]", b'"text"', b"1", b"null", b"", b"\xff\xfe", b"{} x", b'{"a": NaN}', b"[" * 50_000 + b"]" * 50_000],
    ids=["truncated", "array", "string", "number", "null", "empty", "not-utf8", "trailing", "nan", "nested-too-deep"],
)
def test_body_that_is_not_a_json_object_is_invalid_json(api, raw):
    error_of(api.post("wallets", raw, headers=JSON), 400, "invalid_json")
    wallet = api.wallet()
    error_of(api.post(f"wallets/{wallet['id']}/events/ingest", raw, headers=JSON), 400, "invalid_json")
    error_of(api.post("events/batch", raw, headers=JSON), 400, "invalid_json")


def test_metadata_nested_to_the_bound_is_stored_and_read_back_and_one_deeper_is_400(api):
    metadata: dict[str, Any] = {"leaf": True}
    for _ in range(METADATA_MAX_DEPTH - 1):
        metadata = {"a": metadata}
    wallet = api.wallet(metadata=metadata)
    assert api.get(f"wallets/{wallet['id']}").json()["metadata"] == metadata
    assert api.ingest(wallet["id"], event_body(metadata=metadata)).status_code == 201
    assert api.get(f"wallets/{wallet['id']}/events").json()["results"][0]["metadata"] == metadata
    deeper = {"a": metadata}
    error_of(api.post("wallets", wallet_body(metadata=deeper)), 400, "validation_error")
    error_of(api.ingest(wallet["id"], event_body(metadata=deeper)), 400, "validation_error")


def test_chunked_body_with_a_bad_chunk_size_is_400_and_the_connection_closes(base_url, key):
    """Issue 17: a chunk-size line `zz` was gunicorn's InvalidChunkSize raised in the middleware, a 500."""
    host, port = base_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=TIMEOUT) as sock:
        sock.sendall(
            b"POST /api/v1/wallets HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Transfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n"
        )
        answer = b""
        while chunk := sock.recv(65536):  # the server closes the connection after its answer
            answer += chunk
    head, _, _ = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400 ")
    assert b"connection: close" in head.lower()
    assert b'"code":"invalid_json"' in answer.replace(b" ", b"")


def test_json_in_another_charset_is_415(api):
    body = json.dumps(wallet_body(metadata={"name": "Adé"}), ensure_ascii=False).encode("latin-1")
    response = api.post("wallets", data=body, headers={"Content-Type": "application/json; charset=latin-1"})
    error_of(response, 415, "unsupported_media_type")


def test_body_over_1_mib_is_413(api):
    body = json.dumps(wallet_body(metadata={"pad": "x" * (1024 * 1024)})).encode()
    error_of(api.post("wallets", body, headers=JSON), 413, "payload_too_large")
    wallet = api.wallet()
    error_of(api.ingest(wallet["id"], event_body(metadata={"pad": "x" * (1024 * 1024)})), 413, "payload_too_large")


def test_body_of_exactly_1_mib_is_not_too_large(api):
    body = json.dumps(wallet_body(metadata={"pad": ""})).encode()
    body = body.replace(b'"pad": ""', b'"pad": "' + b"x" * (1024 * 1024 - len(body)) + b'"')
    assert len(body) == 1024 * 1024
    assert api.post("wallets", body, headers=JSON).status_code == 201


def test_batch_body_may_exceed_1_mib_but_not_16_mib(api):
    wallet = api.wallet()
    item = event_body(wallet_id=wallet["id"], metadata={"pad": "x" * 3000})
    events = [dict(item, provider_event_id=f"big_{n}") for n in range(500)]  # about 1.6 MB
    body = json.dumps({"events": events}).encode()
    assert 1024 * 1024 < len(body) < 16 * 1024 * 1024
    response = api.post("events/batch", body, headers=JSON)
    assert response.status_code == 200, response.text[:500]
    assert response.json()["summary"] == {"created": 500, "duplicate": 0, "conflict": 0, "invalid": 0}

    huge = json.dumps({"events": [item], "pad": "x" * (16 * 1024 * 1024)}).encode()
    error_of(api.post("events/batch", huge, headers=JSON), 413, "payload_too_large")


def post_chunked(base: str, path: str, body: bytes, creds: Creds) -> tuple[int, dict[str, Any]]:
    """A signed POST whose body goes out with Transfer-Encoding: chunked (no Content-Length)."""
    host, port = base.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=TIMEOUT)
    try:
        conn.putrequest("POST", path)
        conn.putheader("Authorization", raw_header(creds, "POST", path, body=body))
        conn.putheader("Content-Type", "application/json")
        conn.putheader("Transfer-Encoding", "chunked")
        conn.endheaders()
        for start in range(0, len(body), 65536):
            part = body[start : start + 65536]
            conn.send(b"%x\r\n%s\r\n" % (len(part), part))
        conn.send(b"0\r\n\r\n")
        response = conn.getresponse()
        return response.status, json.loads(response.read())
    finally:
        conn.close()


def test_chunked_body_is_read_signed_and_size_limited(base_url, key):
    body = json.dumps(wallet_body()).encode()
    status, created = post_chunked(base_url, "/api/v1/wallets", body, key)
    assert status == 201, created
    big = json.dumps(wallet_body(metadata={"pad": "x" * (1024 * 1024)})).encode()
    status, error = post_chunked(base_url, "/api/v1/wallets", big, key)
    assert (status, error["error"]["code"]) == (413, "payload_too_large")


def test_responses_are_json_with_the_right_content_type(api):
    response = api.get("wallets")
    assert response.headers["Content-Type"].startswith("application/json")


# --------------------------------------------------------------------------- wallets


def test_register_wallet_201_with_exactly_the_contract_fields(api):
    body = wallet_body()
    response = api.post("wallets", body)
    assert response.status_code == 201, response.text
    wallet = response.json()
    assert set(wallet) == WALLET_FIELDS
    assert uuid.UUID(wallet["id"])
    assert {name: wallet[name] for name in body} == body
    assert wallet["is_active"] is True
    parse_rfc3339(wallet["created_at"])
    parse_rfc3339(wallet["updated_at"])
    assert "Idempotent-Replayed" not in response.headers

    fetched = api.get(f"wallets/{wallet['id']}")
    assert fetched.status_code == 200
    assert fetched.json() == wallet


def test_omitted_optional_fields(api):
    wallet = api.wallet(provider_customer_id=..., metadata=...)
    assert wallet["provider_customer_id"] is None
    assert wallet["metadata"] == {}


@pytest.mark.parametrize("provider", ["fincra", "paystack", "flutterwave"])
def test_contract_providers_are_accepted(api, provider):
    assert api.wallet(provider=provider)["provider"] == provider


def test_same_idempotency_key_same_wallet_is_200_replayed(api):
    body = wallet_body()
    key = f"reg-{uuid.uuid4()}"
    first = api.post("wallets", body, headers={"Idempotency-Key": key})
    assert first.status_code == 201
    again = api.post("wallets", body, headers={"Idempotency-Key": key})
    assert again.status_code == 200
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json()["id"] == first.json()["id"]


def test_existing_wallet_without_key_or_with_new_key_is_200_replayed(api):
    body = wallet_body()
    created = api.post("wallets", body).json()
    for headers in ({}, {"Idempotency-Key": f"new-{uuid.uuid4()}"}):
        response = api.post("wallets", body, headers=headers)
        assert response.status_code == 200
        assert response.headers["Idempotent-Replayed"] == "true"
        assert response.json()["id"] == created["id"]


def test_idempotency_key_reused_for_another_wallet_is_422(api):
    key = f"reg-{uuid.uuid4()}"
    assert api.post("wallets", wallet_body(), headers={"Idempotency-Key": key}).status_code == 201
    error_of(api.post("wallets", wallet_body(), headers={"Idempotency-Key": key}), 422, "idempotency_key_reused")


def test_account_of_another_user_is_409_wallet_claimed(api):
    body = wallet_body()
    assert api.post("wallets", body).status_code == 201
    error_of(api.post("wallets", dict(body, user_id=str(uuid.uuid4()))), 409, "wallet_claimed")


def test_idempotency_keys_are_separate_namespaces_for_wallets_and_events(api):
    key = f"shared-{uuid.uuid4()}"
    wallet = api.post("wallets", wallet_body(), headers={"Idempotency-Key": key})
    assert wallet.status_code == 201
    event = api.ingest(wallet.json()["id"], event_body(provider_event_id=...), headers={"Idempotency-Key": key})
    assert event.status_code == 201, event.text


def test_racing_identical_registrations_leave_one_wallet(base_url, key):
    body = wallet_body()
    responses = race(12, lambda: Api(base_url, key).post("wallets", body, headers={"Connection": "close"}))
    assert sorted(r.status_code for r in responses) == [200] * 11 + [201], [r.text for r in responses]
    assert len({r.json()["id"] for r in responses}) == 1
    assert all(r.headers["Idempotent-Replayed"] == "true" for r in responses if r.status_code == 200)


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"user_id": 12345}, "user_id"),
        ({"user_id": "not-a-uuid"}, "user_id"),
        ({"user_id": ...}, "user_id"),
        ({"provider": "acme"}, "provider"),
        ({"provider": ...}, "provider"),
        ({"provider_account_id": ...}, "provider_account_id"),
        ({"provider_account_id": 42}, "provider_account_id"),
        ({"metadata": ["a"]}, "metadata"),
        ({"metadata": "{}"}, "metadata"),
    ],
)
def test_bad_wallet_field_is_400_naming_the_field(api, overrides, field):
    error = error_of(api.post("wallets", wallet_body(**overrides)), 400, "validation_error")
    assert field in error["fields"]


def test_every_bad_field_is_named_at_once(api):
    error = error_of(api.post("wallets", {"user_id": 1, "provider": "acme"}), 400, "validation_error")
    assert {"user_id", "provider", "provider_account_id"} <= set(error["fields"])
    assert all(isinstance(messages, list) and messages for messages in error["fields"].values())


def test_bad_idempotency_key_header_is_400(api):
    response = api.post("wallets", wallet_body(), headers={"Idempotency-Key": "x" * 256})
    error = error_of(response, 400, "validation_error")
    assert "Idempotency-Key" in error["fields"]


def test_wallet_listing_newest_first_with_filters(api):
    user = str(uuid.uuid4())
    made = [api.wallet(user_id=user, provider=p) for p in ("fincra", "paystack", "fincra")]
    page = api.get(f"wallets?user_id={user}")
    assert page.status_code == 200
    body = page.json()
    assert set(body) == {"results", "next_cursor"}
    assert [w["id"] for w in body["results"]] == [w["id"] for w in reversed(made)]
    assert body["next_cursor"] is None
    assert all(set(w) == WALLET_FIELDS for w in body["results"])

    # The query is signed exactly as sent.
    fincra = api.get(f"wallets?user_id={user}&provider=fincra&is_active=true").json()["results"]
    assert [w["id"] for w in fincra] == [made[2]["id"], made[0]["id"]]
    assert api.get(f"wallets?user_id={user}&is_active=false").json()["results"] == []


def raw_get(base: str, target: str, creds: Creds) -> tuple[int, dict[str, Any]]:
    """GET with the request target sent byte for byte (`requests` would decode %73 to "s")."""
    path, _, query = target.partition("?")
    host, port = base.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=TIMEOUT)
    try:
        conn.request("GET", target, headers={"Authorization": raw_header(creds, "GET", path, query=query)})
        response = conn.getresponse()
        return response.status, json.loads(response.read())
    finally:
        conn.close()


def test_percent_encoded_query_is_signed_as_sent(api, base_url, key):
    user = str(uuid.uuid4())
    wallet = api.wallet(user_id=user)
    # %66 is "f", %2D is "-": the server verifies over the raw query and decodes it to filter.
    target = f"/api/v1/wallets?provider=%66incra&user_id={user.replace('-', '%2D')}&is_active=true"
    status, body = raw_get(base_url, target, key)
    assert status == 200, body
    assert [w["id"] for w in body["results"]] == [wallet["id"]]


def test_percent_encoded_path_is_signed_as_sent(api, base_url, key):
    wallet = api.wallet()
    status, body = raw_get(base_url, "/api/v1/wallet%73/" + wallet["id"].upper().replace("A", "%41"), key)
    assert status == 200, body
    assert body["id"] == wallet["id"]


def test_every_reader_sees_every_wallet(api, base_url, keys):
    wallet = api.wallet()
    reader = Api(base_url, keys[("wallets:read",)])
    assert reader.get(f"wallets/{wallet['id']}").json() == wallet
    assert [w["id"] for w in reader.get(f"wallets?user_id={wallet['user_id']}").json()["results"]] == [wallet["id"]]


@pytest.mark.parametrize(
    "query",
    ["is_active=maybe", "user_id=123", "provider=acme", "limit=0", "limit=1001", "limit=abc", "limit=-1"],
)
def test_bad_listing_parameter_is_400_naming_it(api, query):
    error = error_of(api.get(f"wallets?{query}"), 400, "validation_error")
    assert query.split("=")[0] in error["fields"]


def test_limit_bounds_are_inclusive(api):
    assert api.get("wallets?limit=1").status_code == 200
    assert api.get("wallets?limit=1000").status_code == 200


def test_cursor_pages_and_next_cursor_is_null_exactly_on_the_last_page(api):
    user = str(uuid.uuid4())
    ids = [api.wallet(user_id=user)["id"] for _ in range(4)][::-1]

    first = api.get(f"wallets?user_id={user}&limit=2").json()
    assert [w["id"] for w in first["results"]] == ids[:2]
    assert isinstance(first["next_cursor"], str) and first["next_cursor"]
    second = api.get("wallets", params={"user_id": user, "limit": 2, "cursor": first["next_cursor"]}).json()
    # The page that ends the listing says so, even though it is full.
    assert [w["id"] for w in second["results"]] == ids[2:]
    assert second["next_cursor"] is None

    exact = api.get(f"wallets?user_id={user}&limit=4").json()
    assert len(exact["results"]) == 4 and exact["next_cursor"] is None
    assert api.get(f"wallets?user_id={user}&limit=3").json()["next_cursor"] is not None
    empty = api.get(f"wallets?user_id={uuid.uuid4()}").json()
    assert empty == {"results": [], "next_cursor": None}


@pytest.mark.parametrize("cursor", ["garbage", "", "tampered"])
def test_cursor_the_server_did_not_issue_is_400(api, cursor):
    user = str(uuid.uuid4())
    for _ in range(3):
        api.wallet(user_id=user)
    issued = api.get(f"wallets?user_id={user}&limit=1").json()["next_cursor"]
    if cursor == "tampered":
        cursor = issued[:-4] + ("AAAA" if not issued.endswith("AAAA") else "BBBB")
    elif cursor == "":
        cursor = "%%%"
    error = error_of(
        api.get("wallets", params={"user_id": user, "limit": 1, "cursor": cursor}), 400, "validation_error"
    )
    assert "cursor" in error["fields"]


# --------------------------------------------------------------------------- events


def test_ingest_201_with_exactly_the_contract_fields(api):
    wallet = api.wallet()
    body = event_body(metadata={"channel": "bank_transfer"})
    response = api.ingest(wallet["id"], body)
    assert response.status_code == 201, response.text
    event = response.json()
    assert set(event) == EVENT_FIELDS
    assert uuid.UUID(event["id"])
    assert event["wallet_id"] == wallet["id"]
    assert event["provider"] == "fincra"
    for name in ("event_type", "amount", "currency", "provider_event_id", "metadata"):
        assert event[name] == body[name]
    assert parse_rfc3339(event["occurred_at"]) == parse_rfc3339(body["occurred_at"])
    parse_rfc3339(event["created_at"])
    assert "Idempotent-Replayed" not in response.headers


def test_event_id_becomes_the_id(api):
    wallet = api.wallet()
    event_id = str(uuid.uuid4())
    response = api.ingest(wallet["id"], event_body(event_id=event_id, provider_event_id=...))
    assert response.status_code == 201
    assert response.json()["id"] == event_id
    assert response.json()["provider_event_id"] is None


@pytest.mark.parametrize("event_type", ["deposit", "withdrawal", "transfer_in", "transfer_out", "fee", "refund",
                                        "hold", "release"])  # fmt: skip
def test_every_event_type_is_accepted(api, event_type):
    wallet = api.wallet()
    assert api.ingest(wallet["id"], event_body(event_type=event_type)).json()["event_type"] == event_type


@pytest.mark.parametrize(
    ("currency", "sent", "rendered"),
    [
        ("NGN", "1500.00", "1500.00"),
        ("NGN", "1500", "1500.00"),
        ("NGN", "1500.5", "1500.50"),
        ("UGX", "1500", "1500"),
        ("KWD", "1.500", "1.500"),
        ("KWD", "1.5", "1.500"),
        ("NGN", "0.01", "0.01"),
        ("NGN", "999999999999999999.99", "999999999999999999.99"),
    ],
)
def test_amounts_render_with_the_currency_digits(api, currency, sent, rendered):
    wallet = api.wallet()
    response = api.ingest(wallet["id"], event_body(amount=sent, currency=currency))
    assert response.status_code == 201, response.text
    assert response.json()["amount"] == rendered
    listed = api.get(f"wallets/{wallet['id']}/events").json()["results"]
    assert listed[0]["amount"] == rendered
    balance = api.get(f"wallets/{wallet['id']}/balance").json()["balances"]
    assert balance[0]["ledger"] == rendered


@pytest.mark.parametrize(
    ("currency", "amount"),
    [
        ("NGN", "1e3"),
        ("NGN", " 1.00"),
        ("NGN", "1.00 "),
        ("NGN", "+1"),
        ("NGN", "-1"),
        ("NGN", ".5"),
        ("NGN", "01.00"),
        ("NGN", "1."),
        ("NGN", "NaN"),
        ("NGN", "Infinity"),
        ("NGN", "1.000"),
        ("NGN", "0"),
        ("NGN", "0.00"),
        ("NGN", "1,000.00"),
        ("NGN", "1000000000000000000"),
        ("NGN", ""),
        ("UGX", "1.0"),
        ("UGX", "1."),
        ("KWD", "1.0000"),
        ("NGN", 1500),
        ("NGN", 1500.0),
        ("NGN", None),
    ],
)
def test_bad_amount_is_400_validation_error(api, currency, amount):
    wallet = api.wallet()
    error = error_of(api.ingest(wallet["id"], event_body(amount=amount, currency=currency)), 400, "validation_error")
    assert "amount" in error["fields"]


@pytest.mark.parametrize("currency", ["ngn", "XXX1", "NAIRA", "ZZZ", "", 566])
def test_bad_currency_is_400(api, currency):
    wallet = api.wallet()
    error = error_of(api.ingest(wallet["id"], event_body(currency=currency)), 400, "validation_error")
    assert "currency" in error["fields"]


@pytest.mark.parametrize(
    "occurred_at",
    ["2026-11-20T14:02:18", "2026-11-20 14:02:18", "2026-11-20", "yesterday", 1763647338, ""],
)
def test_naive_or_unparseable_occurred_at_is_400(api, occurred_at):
    wallet = api.wallet()
    error = error_of(api.ingest(wallet["id"], event_body(occurred_at=occurred_at)), 400, "validation_error")
    assert "occurred_at" in error["fields"]


def test_occurred_at_with_an_offset_is_the_same_instant(api):
    wallet = api.wallet()
    event = api.ingest(wallet["id"], event_body(occurred_at="2026-11-20T15:02:18+01:00")).json()
    assert parse_rfc3339(event["occurred_at"]) == dt.datetime(2026, 11, 20, 14, 2, 18, tzinfo=dt.UTC)


def test_occurred_at_more_than_5_minutes_ahead_is_400(api):
    wallet = api.wallet()
    now = dt.datetime.now(dt.UTC)
    late = (now + dt.timedelta(minutes=6)).isoformat()
    error = error_of(api.ingest(wallet["id"], event_body(occurred_at=late)), 400, "validation_error")
    assert "occurred_at" in error["fields"]
    soon = (now + dt.timedelta(minutes=4)).isoformat()
    assert api.ingest(wallet["id"], event_body(occurred_at=soon)).status_code == 201


def test_bad_event_fields_are_named(api):
    wallet = api.wallet()
    body = {"event_type": "gift", "amount": 5, "currency": "ngn", "occurred_at": "x", "provider_event_id": "p1"}
    error = error_of(api.ingest(wallet["id"], body), 400, "validation_error")
    assert {"event_type", "amount", "currency", "occurred_at"} <= set(error["fields"])


def test_provider_field_must_equal_the_wallets(api):
    wallet = api.wallet(provider="paystack")
    error = error_of(api.ingest(wallet["id"], event_body(provider="fincra")), 400, "validation_error")
    assert "provider" in error["fields"]
    assert api.ingest(wallet["id"], event_body(provider="paystack")).json()["provider"] == "paystack"


def test_bad_event_idempotency_key_header_is_400(api):
    wallet = api.wallet()
    response = api.ingest(wallet["id"], event_body(), headers={"Idempotency-Key": "é" * 3})
    assert "Idempotency-Key" in error_of(response, 400, "validation_error")["fields"]


def test_no_dedup_key_is_400_dedup_key_required(api):
    wallet = api.wallet()
    error_of(api.ingest(wallet["id"], event_body(provider_event_id=...)), 400, "dedup_key_required")


@pytest.mark.parametrize("dedup", ["event_id", "provider_event_id", "idempotency_key"])
def test_matching_event_same_content_is_200_replayed_different_content_is_409(api, dedup):
    wallet = api.wallet()
    body = event_body(provider_event_id=...)
    headers: dict[str, str] = {}
    if dedup == "event_id":
        body["event_id"] = str(uuid.uuid4())
    elif dedup == "provider_event_id":
        body["provider_event_id"] = f"evt_{uuid.uuid4().hex}"
    else:
        headers["Idempotency-Key"] = f"ingest-{uuid.uuid4()}"
    first = api.ingest(wallet["id"], body, headers=headers)
    assert first.status_code == 201, first.text

    # Same content (amount by numeric value, occurred_at by instant); metadata is not content.
    same = dict(body, amount="1500", occurred_at="2026-11-20T15:02:18+01:00", metadata={"note": "resent"})
    replay = api.ingest(wallet["id"], same, headers=headers)
    assert replay.status_code == 200, replay.text
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert replay.json() == first.json()

    conflict = api.ingest(wallet["id"], dict(body, amount="1500.01"), headers=headers)
    error = error_of(conflict, 409, "event_conflict")
    assert error["existing_event_id"] == first.json()["id"]


def test_racing_identical_ingests_leave_one_event(api, base_url, key):
    wallet = api.wallet()
    body = event_body()
    responses = race(12, lambda: Api(base_url, key).ingest(wallet["id"], body, headers={"Connection": "close"}))
    assert sorted(r.status_code for r in responses) == [200] * 11 + [201], [r.text for r in responses]
    assert len({r.json()["id"] for r in responses}) == 1
    assert len(api.get(f"wallets/{wallet['id']}/events").json()["results"]) == 1
    assert api.get(f"wallets/{wallet['id']}/balance").json()["balances"][0]["event_count"] == 1


def test_same_event_id_with_another_provider_event_id_is_409(api):
    wallet = api.wallet()
    body = event_body(event_id=str(uuid.uuid4()))
    first = api.ingest(wallet["id"], body).json()
    error = error_of(api.ingest(wallet["id"], dict(body, provider_event_id="other")), 409, "event_conflict")
    assert error["existing_event_id"] == first["id"]


def test_provider_event_id_matches_across_wallets_of_the_provider(api):
    """The match is provider + provider_event_id: another wallet is different content."""
    first_wallet, second_wallet = api.wallet(), api.wallet()
    body = event_body()
    created = api.ingest(first_wallet["id"], body).json()
    error = error_of(api.ingest(second_wallet["id"], body), 409, "event_conflict")
    assert error["existing_event_id"] == created["id"]


def test_event_listing_order_filters_and_pages(api):
    wallet = api.wallet()
    times = ["2026-11-20T10:00:00Z", "2026-11-20T11:00:00Z", "2026-11-20T11:00:00Z", "2026-11-20T12:00:00Z"]
    types = ["deposit", "fee", "deposit", "withdrawal"]
    ids = [
        api.ingest(wallet["id"], event_body(occurred_at=t, event_type=k, amount="1.00")).json()["id"]
        for t, k in zip(times, types, strict=True)
    ]
    listed = api.get(f"wallets/{wallet['id']}/events").json()
    assert set(listed) == {"results", "next_cursor"} and listed["next_cursor"] is None
    # occurred_at descending, ties newest-recorded first.
    assert [e["id"] for e in listed["results"]] == [ids[3], ids[2], ids[1], ids[0]]
    assert all(set(e) == EVENT_FIELDS for e in listed["results"])

    deposits = api.get(f"wallets/{wallet['id']}/events?event_type=deposit").json()["results"]
    assert [e["id"] for e in deposits] == [ids[2], ids[0]]
    window = api.get(
        f"wallets/{wallet['id']}/events",
        params={"occurred_after": "2026-11-20T11:00:00Z", "occurred_before": "2026-11-20T12:00:00+00:00"},
    ).json()["results"]
    assert [e["id"] for e in window] == [ids[3], ids[2], ids[1]]  # inclusive at both ends

    page1 = api.get(f"wallets/{wallet['id']}/events?limit=3").json()
    page2 = api.get(f"wallets/{wallet['id']}/events", params={"limit": 3, "cursor": page1["next_cursor"]}).json()
    assert [e["id"] for e in page1["results"] + page2["results"]] == [ids[3], ids[2], ids[1], ids[0]]
    assert page2["next_cursor"] is None


@pytest.mark.parametrize(
    "query",
    [
        "event_type=gift",
        "occurred_after=2026-11-20T10:00:00",
        "occurred_before=tomorrow",
        "limit=0",
        "limit=1001",
        "cursor=abc",
    ],
)
def test_bad_event_listing_parameter_is_400_naming_it(api, query):
    wallet = api.wallet()
    error = error_of(api.get(f"wallets/{wallet['id']}/events?{query}"), 400, "validation_error")
    assert query.split("=")[0] in error["fields"]


def test_cursor_of_one_wallet_is_refused_for_another(api):
    first, second = api.wallet(), api.wallet()
    for n in range(2):
        api.ingest(first["id"], event_body(amount=f"{n + 1}.00"))
    cursor = api.get(f"wallets/{first['id']}/events?limit=1").json()["next_cursor"]
    response = api.get(f"wallets/{second['id']}/events", params={"limit": 1, "cursor": cursor})
    assert "cursor" in error_of(response, 400, "validation_error")["fields"]


# --------------------------------------------------------------------------- batch


def test_batch_decides_each_item_in_order(api):
    wallet = api.wallet()
    stored = api.ingest(wallet["id"], event_body(provider_event_id="pre_" + uuid.uuid4().hex)).json()
    fresh = event_body(wallet_id=wallet["id"])
    events = [
        fresh,  # 0 created
        dict(fresh),  # 1 duplicate inside the batch
        dict(fresh, amount="2.00"),  # 2 conflict inside the batch
        event_body(wallet_id=wallet["id"], provider_event_id=stored["provider_event_id"]),  # 3 duplicate of stored
        event_body(wallet_id=str(uuid.uuid4())),  # 4 unknown wallet
        event_body(wallet_id=wallet["id"], amount="1e3"),  # 5 bad field
        event_body(wallet_id=wallet["id"], provider_event_id=..., idempotency_key=f"b-{uuid.uuid4()}"),  # 6 created
        event_body(wallet_id=wallet["id"], provider_event_id=...),  # 7 no dedup key
        "not an object",  # 8
    ]
    response = api.post("events/batch", {"events": events})
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"results", "summary"}
    results = body["results"]
    assert [r["index"] for r in results] == list(range(len(events)))
    assert all(set(r) == {"index", "status", "event", "error"} for r in results)
    statuses = [r["status"] for r in results]
    assert statuses == [
        "created", "duplicate", "conflict", "duplicate", "invalid", "invalid", "created", "invalid", "invalid"
    ]  # fmt: skip
    assert body["summary"] == {"created": 2, "duplicate": 2, "conflict": 1, "invalid": 4}

    assert set(results[0]["event"]) == EVENT_FIELDS and results[0]["error"] is None
    assert results[1]["event"]["id"] == results[0]["event"]["id"]
    assert results[3]["event"]["id"] == stored["id"]
    assert results[2]["error"]["code"] == "event_conflict" and results[2]["event"] is None
    assert results[4]["error"]["code"] == "not_found"
    assert results[5]["error"]["code"] == "validation_error"
    assert results[7]["error"]["code"] == "dedup_key_required"
    for result in results[4:6] + results[7:]:
        assert result["event"] is None and result["error"]["message"]
    assert len(api.get(f"wallets/{wallet['id']}/events").json()["results"]) == 3


@pytest.mark.parametrize("events", [[], "x", None], ids=["empty", "string", "null"])
def test_batch_empty_or_not_a_list_is_400(api, events):
    error = error_of(api.post("events/batch", {"events": events}), 400, "validation_error")
    assert "events" in error["fields"]


def test_batch_without_events_is_400_and_an_item_without_wallet_id_is_invalid(api):
    error_of(api.post("events/batch", {}), 400, "validation_error")
    response = api.post("events/batch", {"events": [event_body()]})
    assert response.status_code == 200, response.text
    (result,) = response.json()["results"]
    assert (result["status"], result["error"]["code"], result["event"]) == ("invalid", "validation_error", None)


def test_batch_over_1000_items_is_400_and_1000_is_fine(api):
    wallet = api.wallet()
    items = [event_body(wallet_id=wallet["id"], provider_event_id=f"k{n}_{uuid.uuid4().hex}") for n in range(1001)]
    error = error_of(api.post("events/batch", {"events": items}), 400, "validation_error")
    assert "events" in error["fields"]
    response = api.post("events/batch", {"events": items[:1000]})
    assert response.status_code == 200
    assert response.json()["summary"]["created"] == 1000


# --------------------------------------------------------------------------- balances


def test_balance_reconstructed_from_events(api):
    wallet = api.wallet()
    empty = api.get(f"wallets/{wallet['id']}/balance")
    assert empty.status_code == 200
    assert set(empty.json()) == {"wallet_id", "as_of", "balances"}
    assert empty.json()["balances"] == []
    parse_rfc3339(empty.json()["as_of"])

    for event_type, amount, day in [
        ("deposit", "1000.00", 1),
        ("transfer_in", "700.00", 2),
        ("refund", "50.50", 3),
        ("withdrawal", "100.00", 4),
        ("transfer_out", "120.25", 5),
        ("fee", "30.25", 6),
        ("hold", "300.00", 7),
        ("release", "100.00", 8),
    ]:
        body = event_body(event_type=event_type, amount=amount, occurred_at=f"2026-11-0{day}T12:00:00Z")
        assert api.ingest(wallet["id"], body).status_code == 201
    api.ingest(wallet["id"], event_body(currency="UGX", amount="5000", occurred_at="2026-11-09T00:00:00Z"))

    body = api.get(f"wallets/{wallet['id']}/balance").json()
    assert body["wallet_id"] == wallet["id"]
    by_currency = {entry["currency"]: entry for entry in body["balances"]}
    assert set(by_currency) == {"NGN", "UGX"}
    ngn = by_currency["NGN"]
    assert set(ngn) == BALANCE_FIELDS
    # 1000 + 700 + 50.50 - 100 - 120.25 - 30.25 = 1500.00; held 300 - 100 = 200.
    assert (ngn["ledger"], ngn["held"], ngn["available"], ngn["event_count"]) == ("1500.00", "200.00", "1300.00", 8)
    assert parse_rfc3339(ngn["last_event_at"]) == dt.datetime(2026, 11, 8, 12, tzinfo=dt.UTC)
    assert (by_currency["UGX"]["ledger"], by_currency["UGX"]["available"]) == ("5000", "5000")

    # as_of is inclusive, with an offset; before the first event there is nothing.
    at = api.get(f"wallets/{wallet['id']}/balance", params={"as_of": "2026-11-02T13:00:00+01:00"}).json()
    assert [(b["currency"], b["ledger"], b["event_count"]) for b in at["balances"]] == [("NGN", "1700.00", 2)]
    assert parse_rfc3339(at["as_of"]) == dt.datetime(2026, 11, 2, 12, tzinfo=dt.UTC)
    before = api.get(f"wallets/{wallet['id']}/balance", params={"as_of": "2026-10-01T00:00:00Z"}).json()
    assert before["balances"] == []


def test_negative_balance_is_rendered_with_a_minus(api):
    wallet = api.wallet()
    api.ingest(wallet["id"], event_body(event_type="withdrawal", amount="1.500", currency="KWD"))
    entry = api.get(f"wallets/{wallet['id']}/balance").json()["balances"][0]
    assert (entry["ledger"], entry["held"], entry["available"]) == ("-1.500", "0.000", "-1.500")


@pytest.mark.parametrize("as_of", ["2026-11-20T10:00:00", "soon", "2026-13-01T00:00:00Z"])
def test_bad_as_of_is_400(api, as_of):
    wallet = api.wallet()
    error = error_of(api.get(f"wallets/{wallet['id']}/balance", params={"as_of": as_of}), 400, "validation_error")
    assert "as_of" in error["fields"]


def test_provider_balance_and_reconciliation(api):
    wallet = api.wallet()
    error_of(api.get(f"wallets/{wallet['id']}/reconciliation?currency=NGN"), 404, "not_found")
    api.ingest(wallet["id"], event_body(amount="1500.00", occurred_at="2026-11-20T10:00:00Z"))
    api.ingest(wallet["id"], event_body(event_type="hold", amount="200.00", occurred_at="2026-11-20T10:30:00Z"))
    api.ingest(wallet["id"], event_body(amount="999.00", occurred_at="2026-11-20T12:00:00Z"))  # after the report

    report_body = {"currency": "NGN", "available": "1300.00", "ledger": "1500", "reported_at": "2026-11-20T11:00:00Z"}
    response = api.post(f"wallets/{wallet['id']}/provider-balances", report_body)
    assert response.status_code == 201, response.text
    report = response.json()
    assert {"id", "currency", "available", "ledger", "reported_at", "created_at"} <= set(report)
    assert uuid.UUID(report["id"])
    assert (report["currency"], report["available"], report["ledger"]) == ("NGN", "1300.00", "1500.00")
    parse_rfc3339(report["created_at"])

    recon = api.get(f"wallets/{wallet['id']}/reconciliation?currency=NGN")
    assert recon.status_code == 200, recon.text
    body = recon.json()
    assert {"currency", "reported_at", "reported", "reconstructed", "status", "difference"} <= set(body)
    assert body["currency"] == "NGN"
    assert parse_rfc3339(body["reported_at"]) == dt.datetime(2026, 11, 20, 11, tzinfo=dt.UTC)
    assert (body["reported"]["available"], body["reported"]["ledger"]) == ("1300.00", "1500.00")
    assert (body["reconstructed"]["available"], body["reconstructed"]["ledger"]) == ("1300.00", "1500.00")
    assert body["status"] == "matched"
    assert body["difference"] == {"available": "0.00", "ledger": "0.00"}

    # A later report without ledger, off by 0.01: drift, ledger difference null.
    later = {"currency": "NGN", "available": "2299.01", "reported_at": "2026-11-20T13:00:00Z"}
    assert api.post(f"wallets/{wallet['id']}/provider-balances", later).status_code == 201
    drift = api.get(f"wallets/{wallet['id']}/reconciliation?currency=NGN").json()
    assert drift["status"] == "drift"
    assert drift["difference"] == {"available": "0.01", "ledger": None}
    assert drift["reported"]["ledger"] is None


def test_provider_balances_and_reconciliation_of_an_unknown_wallet_are_404(api):
    body = {"currency": "NGN", "available": "1.00", "reported_at": "2026-11-20T11:00:00Z"}
    error_of(api.post(f"wallets/{uuid.uuid4()}/provider-balances", body), 404, "not_found")
    error_of(api.get(f"wallets/{uuid.uuid4()}/reconciliation?currency=NGN"), 404, "not_found")


@pytest.mark.parametrize("query", ["", "?currency=ngn", "?currency=NAIRA"])
def test_reconciliation_needs_a_currency(api, query):
    wallet = api.wallet()
    body = {"currency": "NGN", "available": "1.00", "reported_at": "2026-11-20T11:00:00Z"}
    assert api.post(f"wallets/{wallet['id']}/provider-balances", body).status_code == 201
    error = error_of(api.get(f"wallets/{wallet['id']}/reconciliation{query}"), 400, "validation_error")
    assert "currency" in error["fields"]


def test_reconciliation_uses_the_latest_reported_at_not_the_latest_recorded(api):
    wallet = api.wallet()
    api.ingest(wallet["id"], event_body(amount="10.00", occurred_at="2026-11-20T10:00:00Z"))
    for available, reported_at in (("10.00", "2026-11-20T12:00:00Z"), ("99.00", "2026-11-20T11:00:00Z")):
        body = {"currency": "NGN", "available": available, "reported_at": reported_at}
        assert api.post(f"wallets/{wallet['id']}/provider-balances", body).status_code == 201
    body = api.get(f"wallets/{wallet['id']}/reconciliation?currency=NGN").json()
    assert (body["reported"]["available"], body["status"]) == ("10.00", "matched")


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"available": 1300}, "available"),
        ({"available": "1e3"}, "available"),
        ({"available": "1300.000"}, "available"),
        ({"ledger": "abc"}, "ledger"),
        ({"reported_at": "2026-11-20T11:00:00"}, "reported_at"),
        ({"currency": "ngn"}, "currency"),
    ],
)
def test_bad_provider_balance_is_400(api, overrides, field):
    wallet = api.wallet()
    body = {"currency": "NGN", "available": "1300.00", "reported_at": "2026-11-20T11:00:00Z", **overrides}
    error = error_of(api.post(f"wallets/{wallet['id']}/provider-balances", body), 400, "validation_error")
    assert field in error["fields"]


def test_provider_balance_may_be_zero_or_negative(api):
    wallet = api.wallet()
    for amount in ("0.00", "-12.50"):
        body = {"currency": "NGN", "available": amount, "reported_at": "2026-11-20T11:00:00Z"}
        response = api.post(f"wallets/{wallet['id']}/provider-balances", body)
        assert response.status_code == 201, response.text
        assert response.json()["available"] == amount


# --------------------------------------------------------------------------- unauthenticated endpoints


def test_healthz(base_url):
    response = http_get(f"{base_url}/healthz", timeout=TIMEOUT)
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok"}


@pytest.mark.parametrize("path", ["/healthz", "/metrics"])
def test_unauthenticated_endpoints_answer_other_methods_with_the_405_envelope(base_url, path):
    response = requests.post(f"{base_url}{path}", timeout=TIMEOUT)  # no CSRF token: not an HTML 403
    error_of(response, 405, "method_not_allowed")


def test_schema_is_openapi_3_covering_every_path(base_url):
    response = http_get(f"{base_url}/api/v1/schema", headers={"Accept": "application/json"}, timeout=TIMEOUT)
    assert response.status_code == 200
    document = response.json()
    assert document["openapi"].startswith("3.")
    paths = set(document["paths"])
    assert {
        "/api/v1/wallets",
        "/api/v1/wallets/{wallet_id}",
        "/api/v1/wallets/{wallet_id}/events/ingest",
        "/api/v1/wallets/{wallet_id}/events",
        "/api/v1/events/batch",
        "/api/v1/wallets/{wallet_id}/balance",
        "/api/v1/wallets/{wallet_id}/provider-balances",
        "/api/v1/wallets/{wallet_id}/reconciliation",
    } <= paths


def test_schema_is_json_without_an_accept_header(base_url):
    """API.md's bodies are JSON; YAML only when asked for."""
    response = http_get(f"{base_url}/api/v1/schema")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("application/json")
    assert response.json()["openapi"].startswith("3.")
    yaml_response = http_get(f"{base_url}/api/v1/schema?format=yaml")
    assert yaml_response.text.startswith("openapi: 3.")


def test_docs_render(base_url):
    response = http_get(f"{base_url}/api/v1/docs", timeout=TIMEOUT)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/html")
    assert "swagger" in response.text.lower()
    assert "/api/v1/schema" in response.text


def test_metrics_is_prometheus_text(base_url, api):
    api.get("wallets")
    response = http_get(f"{base_url}/metrics", timeout=TIMEOUT)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain")
    families = {family.name: family for family in text_string_to_metric_families(response.text)}
    latency = families["amani_http_request_duration_seconds"]
    assert latency.type == "histogram"
    assert any(sample.labels.get("route") == "/api/v1/wallets" for sample in latency.samples)


# --------------------------------------------------------------------------- process-level backfill contract


def _manage(args: list[str], stdin: bytes, database_url: str) -> subprocess.CompletedProcess[bytes]:
    env = {
        **{name: value for name, value in os.environ.items() if name != "DJANGO_SETTINGS_MODULE"},
        "DATABASE_URL": database_url,
        # The same key as the test process: API secrets are encrypted with a key derived from it.
        "SECRET_KEY": settings.SECRET_KEY,
        "DEBUG": "false",
        "ALLOWED_HOSTS": "127.0.0.1",
    }
    return subprocess.run(
        [sys.executable, "manage.py", "backfill_wallet_events", *args],
        input=stdin,
        cwd=REPO,
        env=env,
        capture_output=True,
        timeout=120,
    )


def test_backfill_csv_from_stdin_exit_status_line_numbers_and_summary(api):
    wallet = api.wallet()
    database_url = _database_url(connection.settings_dict)
    header = "wallet_id,event_type,amount,currency,provider_event_id,occurred_at,metadata,idempotency_key\n"
    evt = f"bf_{uuid.uuid4().hex}"
    rows = [
        f'{wallet["id"]},deposit,10.00,NGN,{evt},2026-11-20T10:00:00Z,"{{""a"": 1}}",\n',  # line 2 created
        f"{wallet['id']},deposit,1e3,NGN,{evt}_x,2026-11-20T10:00:00Z,,\n",  # line 3 invalid
        f"{wallet['id']},deposit,10.00,NGN,{evt},2026-11-20T10:00:00Z,,\n",  # line 4 duplicate
        f"{wallet['id']},deposit,11.00,NGN,{evt},2026-11-20T10:00:00Z,,\n",  # line 5 conflict
    ]
    data = (header + "".join(rows)).encode()
    run = _manage(["-", "--format", "csv"], data, database_url)
    assert run.returncode == 1, run.stderr.decode()
    assert run.stdout.decode().strip().splitlines()[-1] == "read=4 created=1 duplicate=1 conflict=1 invalid=1"
    err = run.stderr.decode()
    assert "line 3:" in err and "line 5:" in err
    assert "line 2:" not in err and "line 4:" not in err

    again = _manage(["-", "--format", "csv"], data, database_url)
    assert again.stdout.decode().strip().splitlines()[-1] == "read=4 created=0 duplicate=2 conflict=1 invalid=1"
    events = api.get(f"wallets/{wallet['id']}/events").json()["results"]
    assert [(e["amount"], e["metadata"]) for e in events] == [("10.00", {"a": 1})]


def test_backfill_jsonl_file_clean_run_exits_0_and_unusable_input_exits_2(api, tmp_path):
    wallet = api.wallet()
    database_url = _database_url(connection.settings_dict)
    path = tmp_path / "export.jsonl"
    path.write_text(json.dumps(event_body(wallet_id=wallet["id"])) + "\n")
    # `-` without --format: standard input, JSONL (the option is optional in API.md).
    run = _manage(["-"], path.read_bytes(), database_url)
    assert run.returncode == 0, run.stderr.decode()
    assert run.stdout.decode().strip().splitlines()[-1] == "read=1 created=1 duplicate=0 conflict=0 invalid=0"

    missing = _manage([str(tmp_path / "missing.jsonl")], b"", database_url)
    assert missing.returncode == 2
    assert missing.stderr.strip()
    bad_format = _manage([str(path), "--format", "xml"], b"", database_url)
    assert bad_format.returncode == 2


def test_create_api_client_json_key_signs_requests_to_the_server(base_url):
    env = {
        **{name: value for name, value in os.environ.items() if name != "DJANGO_SETTINGS_MODULE"},
        "DATABASE_URL": _database_url(connection.settings_dict),
        "SECRET_KEY": settings.SECRET_KEY,
        "DEBUG": "false",
        "ALLOWED_HOSTS": "127.0.0.1",
    }
    name = f"cli-{uuid.uuid4().hex[:8]}"
    run = subprocess.run(
        [sys.executable, "manage.py", "create_api_client", name, "--scopes", "wallets:read,events:read", "--json"],
        cwd=REPO,
        env=env,
        capture_output=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr.decode()
    printed = json.loads(run.stdout)  # the only output on stdout
    assert set(printed) == {"key_id", "secret", "scopes"}
    assert printed["scopes"] == ["wallets:read", "events:read"]
    session = requests.Session()
    session.auth = HmacAuth(printed["key_id"], printed["secret"])
    assert session.get(f"{base_url}/api/v1/wallets", timeout=TIMEOUT).status_code == 200
    error_of(session.post(f"{base_url}/api/v1/wallets", json=wallet_body(), timeout=TIMEOUT), 403, "insufficient_scope")


def test_throttle_rate_from_the_environment_gives_429_with_retry_after(base_url, key, tmp_path):
    """A second gunicorn, one worker, API_THROTTLE_RATE=3/min: the fourth request of a key is 429."""
    port = _free_port()
    env = {
        **{name: value for name, value in os.environ.items() if name != "DJANGO_SETTINGS_MODULE"},
        "DATABASE_URL": _database_url(connection.settings_dict),
        "SECRET_KEY": settings.SECRET_KEY,
        "DEBUG": "false",
        "ALLOWED_HOSTS": "127.0.0.1",
        "GUNICORN_BIND": f"127.0.0.1:{port}",
        "WEB_CONCURRENCY": "1",
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path),
        "LOG_LEVEL": "WARNING",
        "API_THROTTLE_RATE": "3/min",
    }
    server = subprocess.Popen(
        [str(Path(sys.executable).with_name("gunicorn")), "amani.wsgi:application", "--config", "gunicorn.conf.py"],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                http_get(f"{base}/healthz", timeout=5)
                break
            except requests.RequestException:
                assert time.monotonic() < deadline, "gunicorn did not start"
                time.sleep(0.2)
        throttled = Api(base, key)
        assert [throttled.get("wallets").status_code for _ in range(3)] == [200, 200, 200]
        response = throttled.get("wallets")
        error_of(response, 429, "throttled")
        assert 0 < int(response.headers["Retry-After"]) <= 60
    finally:
        server.terminate()
        server.wait(30)
