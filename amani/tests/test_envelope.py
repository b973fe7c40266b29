"""One error envelope for 404, 405, 413, 415, invalid_json and 500, whatever DEBUG says."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from amani import signing

pytestmark = [pytest.mark.urls("amani.tests.urls")]

ECHO = "/api/v1/test/echo"
MIB = 1024 * 1024


def assert_envelope(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}
    assert body["error"]["code"] == code
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    return body["error"]


@pytest.fixture(params=[False, True], ids=["debug-off", "debug-on"])
def debug(request, settings):
    settings.DEBUG = request.param
    return request.param


# --- 404 --------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/api/v1/nope", "/api/v2/wallets", "/api/", "/api/v1/test/echo/extra/part"])
def test_unknown_api_path_is_404_not_found(signed_client, debug, path):
    assert_envelope(signed_client.get(path), 404, "not_found")


def test_unknown_api_path_is_404_even_without_credentials(db, debug):
    assert_envelope(Client().get("/api/v1/nope"), 404, "not_found")


def test_trailing_slash_is_not_redirected(signed_client):
    assert_envelope(signed_client.get(ECHO + "/"), 404, "not_found")


@pytest.mark.parametrize("item_id", ["123", "not-a-uuid", "0000000-0000-0000-0000-000000000000"])
def test_path_id_that_is_not_a_uuid_is_404(signed_client, debug, item_id):
    assert_envelope(signed_client.get(f"{ECHO}/{item_id}"), 404, "not_found")


def test_path_id_that_is_a_uuid_routes(signed_client):
    response = signed_client.get(f"{ECHO}/2f1c3e7a-43a4-4a39-9fbd-8b3d7b0d9d0e")
    assert response.status_code == 200
    assert response.json()["kwargs"] == {"item_id": "2f1c3e7a-43a4-4a39-9fbd-8b3d7b0d9d0e"}


# --- 405 --------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["PUT", "PATCH", "DELETE", "OPTIONS"])
def test_wrong_method_is_405_method_not_allowed(signed_client, method):
    response = signed_client.request(method, ECHO, {"a": 1})
    assert_envelope(response, 405, "method_not_allowed")
    assert set(response["Allow"].replace(" ", "").split(",")) >= {"GET", "POST"}


def test_post_to_the_healthz_is_405_in_the_envelope(db):
    response = Client().post("/healthz", {}, content_type="application/json")
    assert_envelope(response, 405, "method_not_allowed")
    assert response["Allow"] == "GET, HEAD"


# --- 413 --------------------------------------------------------------------------------


def test_body_over_1_mib_is_413(signed_client, debug):
    body = b'{"a": "' + b"x" * MIB + b'"}'
    assert_envelope(signed_client.post(ECHO, body), 413, "payload_too_large")


def test_body_of_exactly_1_mib_is_accepted(signed_client):
    padding = MIB - len(b'{"a": ""}')
    body = b'{"a": "' + b"x" * padding + b'"}'
    assert len(body) == MIB
    assert signed_client.post(ECHO, body).status_code == 201


def test_413_comes_before_authentication(db):
    response = Client().post(ECHO, b"x" * (MIB + 1), content_type="application/json")
    assert_envelope(response, 413, "payload_too_large")


def test_batch_path_accepts_more_than_1_mib_but_not_more_than_16_mib(signed_client):
    batch = "/api/v1/events/batch"
    body = json.dumps({"events": [], "padding": "x" * (2 * MIB)}).encode()
    assert signed_client.post(batch, body).status_code != 413
    too_big = b'{"events": [], "padding": "' + b"x" * (16 * MIB) + b'"}'
    assert_envelope(signed_client.post(batch, too_big), 413, "payload_too_large")


# --- 415 --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "application/xml"],
)
def test_non_json_body_is_415(signed_client, content_type):
    response = signed_client.post(ECHO, b'{"a": 1}', content_type=content_type)
    assert_envelope(response, 415, "unsupported_media_type")


def test_body_without_content_type_is_415(signed_client):
    response = signed_client.post(ECHO, b'{"a": 1}', content_type="")
    assert_envelope(response, 415, "unsupported_media_type")


def test_json_with_charset_is_accepted(signed_client):
    response = signed_client.post(ECHO, {"a": 1}, content_type="application/json; charset=utf-8")
    assert response.status_code == 201
    assert response.json()["body"] == {"a": 1}


# --- invalid_json -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"{", id="truncated"),
        pytest.param(b"{'a': 1}", id="single-quotes"),
        pytest.param(b"[1, 2]", id="array"),
        pytest.param(b'"text"', id="string"),
        pytest.param(b"42", id="number"),
        pytest.param(b"null", id="null"),
        pytest.param(b'{"a": NaN}', id="nan"),
        pytest.param(b'{"a": Infinity}', id="infinity"),
        pytest.param(b'{"a": -Infinity}', id="minus-infinity"),
        pytest.param(b'{"a": "\xff\xfe"}', id="not-utf8"),
    ],
)
def test_body_that_is_not_a_json_object_is_invalid_json(signed_client, body):
    assert_envelope(signed_client.post(ECHO, body), 400, "invalid_json")


def test_empty_json_body_is_invalid_json(make_api_key):
    issued = make_api_key()
    header = signing.authorization_header(key_id=issued.key_id, secret=issued.secret, method="POST", path=ECHO)
    response = Client().generic("POST", ECHO, b"", CONTENT_TYPE="application/json", headers={"Authorization": header})
    assert_envelope(response, 400, "invalid_json")


def test_empty_body_without_content_type_is_415(signed_client):
    assert_envelope(signed_client.post(ECHO, None), 415, "unsupported_media_type")


def test_invalid_json_is_checked_after_the_signature(db):
    response = Client().post(ECHO, b"{", content_type="application/json")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "missing_credentials"


# --- 500 --------------------------------------------------------------------------------


def test_exception_in_an_api_view_is_500_internal_error(signed_client, debug, caplog):
    error = assert_envelope(signed_client.get("/api/v1/test/crash"), 500, "internal_error")
    assert "boom" not in error["message"]
    assert any(record.exc_info and "boom" in str(record.exc_info[1]) for record in caplog.records)


def test_exception_in_a_plain_view_under_api_is_500_internal_error(db, debug):
    response = Client(raise_request_exception=False).get("/api/v1/test/plain-crash")
    assert_envelope(response, 500, "internal_error")


def test_handler500_answers_in_the_envelope(rf):
    from amani.views import server_error

    response = server_error(rf.get("/anything"))
    assert response.status_code == 500
    assert json.loads(response.content)["error"]["code"] == "internal_error"


def test_head_needs_the_get_scope(signed_client_for):
    assert signed_client_for(["wallets:read"]).request("HEAD", ECHO).status_code == 200
    response = signed_client_for(["events:read"]).request("HEAD", ECHO)
    assert response.status_code == 403


def test_every_error_carries_a_request_id(signed_client):
    response = signed_client.get("/api/v1/nope", headers={"X-Request-ID": "req-123"})
    assert response["X-Request-ID"] == "req-123"


def test_signed_client_helper_signs_like_the_contract(make_api_key):
    # Guards the fixture every other API test relies on.
    issued = make_api_key()
    header = signing.authorization_header(key_id=issued.key_id, secret=issued.secret, method="GET", path=ECHO)
    assert Client().get(ECHO, headers={"Authorization": header}).status_code == 200


# --- the same answers from a real endpoint: /api/v1/wallets ------------------------------

WALLETS = "/api/v1/wallets"


def test_wallets_wrong_method_is_405(signed_client):
    assert_envelope(signed_client.request("DELETE", WALLETS), 405, "method_not_allowed")


def test_wallets_non_json_body_is_415(signed_client):
    response = signed_client.post(WALLETS, b"user_id=1", content_type="application/x-www-form-urlencoded")
    assert_envelope(response, 415, "unsupported_media_type")


@pytest.mark.parametrize("body", [b"[]", b"{", b'{"user_id": NaN}'])
def test_wallets_body_that_is_not_a_json_object_is_invalid_json(signed_client, body):
    assert_envelope(signed_client.post(WALLETS, body), 400, "invalid_json")


@pytest.mark.parametrize("wallet_id", ["1", "abc", "6f1c2a8e3b7d4e599a0c2d4b8e7f1a3"])
def test_wallet_path_id_that_is_not_a_uuid_is_404(signed_client, debug, wallet_id):
    assert_envelope(signed_client.get(f"{WALLETS}/{wallet_id}"), 404, "not_found")


def test_wallets_body_over_1_mib_is_413(signed_client):
    assert_envelope(signed_client.post(WALLETS, b'{"metadata": "' + b"x" * MIB + b'"}'), 413, "payload_too_large")


def test_admin_403_is_django_html_page_not_the_api_envelope(client, django_user_model):
    staff = django_user_model.objects.create_user("viewer", password="pw-viewer-1234", is_staff=True)
    client.force_login(staff)
    response = client.get("/admin/wallets/wallet/add/")
    assert response.status_code == 403
    assert response["Content-Type"].startswith("text/html")
    assert b'"error"' not in response.content
