"""API.md's wallets, checked over real HTTP (testing.contract): registration, idempotency, listing."""

from __future__ import annotations

import http.client
import json
import uuid
from typing import Any

import pytest

from events.tests.factories import event_body
from testing.contract import TIMEOUT, Api, Creds, error_of, parse_rfc3339, raw_header
from testing.races import race
from wallets.tests.factories import wallet_body

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

# Only so that the test database is set up: no test writes through the ORM (its
# transaction would be invisible to the server); everything goes through HTTP.
pytestmark = pytest.mark.django_db


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


def test_idempotency_keys_are_separate_namespaces_for_wallets_and_events(api):
    key = f"shared-{uuid.uuid4()}"
    wallet = api.post("wallets", wallet_body(), headers={"Idempotency-Key": key})
    assert wallet.status_code == 201
    event = api.ingest(wallet.json()["id"], event_body(provider_event_id=...), headers={"Idempotency-Key": key})
    assert event.status_code == 201, event.text


def test_racing_identical_registrations_leave_one_wallet(base_url, key):
    body = wallet_body()
    responses = race(12, lambda _: Api(base_url, key).post("wallets", body, headers={"Connection": "close"}))
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
