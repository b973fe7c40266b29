"""API.md's conventions, checked over real HTTP (testing.contract): the error envelope, paths and methods,
content types, body bounds and chunked bodies, the unauthenticated endpoints, the throttle."""

from __future__ import annotations

import http.client
import json
import socket
import uuid
from typing import Any

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from amani.json_bounds import METADATA_MAX_DEPTH
from events.tests.factories import event_body
from testing.contract import JSON, TIMEOUT, Api, Creds, error_of, http_get, raw_header
from testing.servers import gunicorn_server
from wallets.tests.factories import wallet_body

# Only so that the test database is set up: no test writes through the ORM (its
# transaction would be invisible to the server); everything goes through HTTP.
pytestmark = pytest.mark.django_db


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


# The unauthenticated endpoints


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


def test_throttle_rate_from_the_environment_gives_429_with_retry_after(base_url, key, tmp_path):
    """A second gunicorn, one worker, API_THROTTLE_RATE=3/min: the fourth request of a key is 429."""
    with gunicorn_server(workers=1, metrics_dir=tmp_path / "prometheus", API_THROTTLE_RATE="3/min") as base:
        throttled = Api(base, key)
        assert [throttled.get("wallets").status_code for _ in range(3)] == [200, 200, 200]
        response = throttled.get("wallets")
        error_of(response, 429, "throttled")
        assert 0 < int(response.headers["Retry-After"]) <= 60
