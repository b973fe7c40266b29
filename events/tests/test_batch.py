"""POST /api/v1/events/batch: each item decided in order as a single ingest would decide it."""

from __future__ import annotations

import uuid

import pytest

from audit.models import AuditRecord
from events.models import BalanceBucket, WalletEvent
from events.tests.factories import WalletEventFactory, event_body
from wallets.tests.factories import WalletFactory

pytestmark = pytest.mark.django_db

URL = "/api/v1/events/batch"


def item(wallet, **overrides):
    return {**event_body(**overrides), "wallet_id": str(wallet.public_id)}


def send(client, items):
    response = client.post(URL, {"events": items})
    assert response.status_code == 200, response.content
    return response.json()


def test_mixed_batch_is_decided_item_by_item(signed_client, wallet):
    earlier = WalletEventFactory(wallet=wallet, provider_event_id="stored", amount="5.00")
    stored = {"occurred_at": earlier.occurred_at.isoformat(), "amount": "5.00"}
    items = [
        item(wallet, provider_event_id="new_1"),  # 0 created
        item(wallet, provider_event_id="new_1"),  # 1 duplicate of item 0 (same batch)
        item(wallet, provider_event_id="new_1", amount="2.00"),  # 2 conflict with item 0
        item(wallet, provider_event_id="stored", **stored),  # 3 duplicate of a stored event
        item(wallet, provider_event_id="stored", amount="6.00"),  # 4 conflict with a stored event
        item(wallet, amount="1e3"),  # 5 invalid: validation_error
        {**item(wallet), "wallet_id": str(uuid.uuid4())},  # 6 invalid: not_found
        item(wallet, provider_event_id=...),  # 7 invalid: dedup_key_required
        item(wallet, provider_event_id=None, idempotency_key="k-7"),  # 8 created
        item(wallet, provider="paystack"),  # 9 invalid: provider
        "not an object",  # 10 invalid
    ]
    body = send(signed_client, items)

    results = body["results"]
    assert [r["index"] for r in results] == list(range(len(items)))
    assert [r["status"] for r in results] == [
        "created",
        "duplicate",
        "conflict",
        "duplicate",
        "conflict",
        "invalid",
        "invalid",
        "invalid",
        "created",
        "invalid",
        "invalid",
    ]
    assert body["summary"] == {"created": 2, "duplicate": 2, "conflict": 2, "invalid": 5}
    assert results[1]["event"] == results[0]["event"]
    assert results[2]["error"]["code"] == "event_conflict"
    assert results[2]["error"]["existing_event_id"] == results[0]["event"]["id"]
    assert results[2]["event"] is None
    assert results[3]["event"]["id"] == str(earlier.public_id)
    assert results[4]["error"]["existing_event_id"] == str(earlier.public_id)
    assert results[5]["error"]["code"] == "validation_error"
    assert "amount" in results[5]["error"]["message"]
    assert "amount" in results[5]["error"]["fields"]
    assert results[6]["error"]["code"] == "not_found"
    assert results[7]["error"]["code"] == "dedup_key_required"
    assert "provider" in results[9]["error"]["fields"]
    assert all(r["error"] is None for r in results if r["status"] in ("created", "duplicate"))
    assert all(r["event"] is None for r in results if r["status"] in ("conflict", "invalid"))

    assert WalletEvent.objects.count() == 3
    # One audit record for the batch, naming every event it created, in the same statement.
    audit = AuditRecord.objects.get(action="ingest_events_batch")
    assert audit.resource_type == "wallet_event_batch"
    assert (audit.actor_type, audit.actor_id) == ("api_key", signed_client.key_id)
    assert audit.details["created"] == 2
    assert sorted(audit.details["event_ids"]) == sorted([results[0]["event"]["id"], results[8]["event"]["id"]])
    assert not AuditRecord.objects.filter(action="ingest_event").exists()
    assert WalletEvent.objects.get(idempotency_key="k-7").wallet == wallet


def test_batch_item_matches_single_ingest_representation(signed_client, wallet):
    body = send(signed_client, [item(wallet, provider_event_id="same_as_single")])
    event = body["results"][0]["event"]
    replay = signed_client.post(
        f"/api/v1/wallets/{wallet.public_id}/events/ingest", event_body(provider_event_id="same_as_single")
    )
    assert (replay.status_code, replay.json()) == (200, event)


def test_items_decided_in_order_a_conflicting_item_does_not_block_a_later_one(signed_client, wallet):
    WalletEventFactory(wallet=wallet, provider_event_id="taken")
    items = [
        # Conflicts on provider_event_id, so its idempotency key is not taken by it ...
        item(wallet, provider_event_id="taken", amount="9.00", idempotency_key="k-free"),
        # ... and this later item with that key is new, as two single ingests would decide.
        item(wallet, provider_event_id=None, idempotency_key="k-free"),
        item(wallet, provider_event_id=None, idempotency_key="k-free", amount="3.00"),
    ]
    results = send(signed_client, items)["results"]
    assert [r["status"] for r in results] == ["conflict", "created", "conflict"]
    assert results[2]["error"]["existing_event_id"] == results[1]["event"]["id"]


def test_batch_across_wallets_and_currencies(signed_client):
    wallets = [WalletFactory(provider=p) for p in ("fincra", "paystack", "flutterwave")]
    items = [
        item(w, currency=code, amount="10", provider_event_id=f"e_{w.pk}_{code}")
        for w in wallets
        for code in ("UGX", "KES")
    ]
    body = send(signed_client, items)
    assert body["summary"]["created"] == 6
    assert {r["event"]["wallet_id"] for r in body["results"]} == {str(w.public_id) for w in wallets}
    assert {r["event"]["amount"] for r in body["results"]} == {"10", "10.00"}
    assert BalanceBucket.objects.count() == 6


def test_resent_batch_is_all_duplicates(signed_client, wallet):
    items = [item(wallet, provider_event_id=f"r{n}") for n in range(20)]
    first = send(signed_client, items)
    again = send(signed_client, items)
    assert again["summary"] == {"created": 0, "duplicate": 20, "conflict": 0, "invalid": 0}
    assert [r["event"] for r in again["results"]] == [r["event"] for r in first["results"]]
    assert BalanceBucket.objects.get(wallet=wallet).event_count == 20


def test_thousand_items_are_accepted(signed_client, wallet):
    body = send(signed_client, [item(wallet, provider_event_id=f"m{n}", amount="1.00") for n in range(1000)])
    assert body["summary"]["created"] == 1000
    assert WalletEvent.objects.count() == 1000


@pytest.mark.parametrize(
    "payload",
    [
        {"events": []},
        {"events": [{}] * 1001},
        {"events": "nope"},
        {"events": {"0": {}}},
        {"items": []},
        {},
    ],
    ids=["empty", "1001", "string", "object", "wrong-key", "no-key"],
)
def test_bad_envelope_is_400_validation_error(signed_client, payload):
    response = signed_client.post(URL, payload)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert "events" in error["fields"]


@pytest.mark.parametrize("raw", ["[]", "{bad", '"events"'])
def test_body_not_an_object_is_invalid_json(signed_client, raw):
    response = signed_client.post(URL, raw)
    assert (response.status_code, response.json()["error"]["code"]) == (400, "invalid_json")


def test_all_invalid_batch_writes_nothing(signed_client, wallet):
    body = send(signed_client, [item(wallet, amount="0"), item(wallet, currency="usd")])
    assert body["summary"] == {"created": 0, "duplicate": 0, "conflict": 0, "invalid": 2}
    assert not WalletEvent.objects.exists()
    assert not AuditRecord.objects.filter(action__in=["ingest_event", "ingest_events_batch"]).exists()


def test_item_idempotency_key_is_validated(signed_client, wallet):
    result = send(signed_client, [item(wallet, idempotency_key="x" * 256)])["results"][0]
    assert result["status"] == "invalid"
    assert "idempotency_key" in result["error"]["fields"]


def test_wallet_id_must_be_a_uuid(signed_client, wallet):
    result = send(signed_client, [{**item(wallet), "wallet_id": 42}])["results"][0]
    assert (result["status"], result["error"]["code"]) == ("invalid", "validation_error")
    assert "wallet_id" in result["error"]["fields"]


def test_scope_events_write_is_required(signed_client_for, wallet):
    response = signed_client_for(["events:read"]).post(URL, {"events": [item(wallet)]})
    assert (response.status_code, response.json()["error"]["code"]) == (403, "insufficient_scope")


def test_batch_round_trips_do_not_grow_with_the_batch(signed_client, django_assert_num_queries):
    wallets = [WalletFactory() for _ in range(5)]
    stored = WalletEventFactory(wallet=wallets[0], provider_event_id="old")
    items = [item(w, provider_event_id=f"q{n}") for n, w in enumerate(wallets * 40)]
    items.append(item(wallets[0], provider_event_id="old", occurred_at=stored.occurred_at.isoformat(), amount="100"))
    items.append(item(wallets[0], provider_event_id="q0"))
    signed_client.post(URL, {"events": [item(wallets[0], provider_event_id="warm")]})
    # Authentication (key, nonce), then: wallets, the INSERT with the bucket upsert and the audit
    # record, and the SELECT deciding the two items that were not new.
    with django_assert_num_queries(5):
        body = send(signed_client, items)
    assert body["summary"] == {"created": 200, "duplicate": 2, "conflict": 0, "invalid": 0}


def test_item_metadata_over_the_single_request_limit_is_invalid(signed_client, wallet, settings):
    settings.API_MAX_BODY_BYTES = 1024 * 1024
    big = {"blob": "x" * (3 * 1024 * 1024)}
    fits = {"blob": "é" * 1000}
    body = send(
        signed_client,
        [
            item(wallet, provider_event_id="big", metadata=big),
            item(wallet, provider_event_id="fits", metadata=fits),
        ],
    )
    big_result, fits_result = body["results"]
    assert big_result["status"] == "invalid" and big_result["event"] is None
    assert big_result["error"]["code"] == "validation_error"
    assert "metadata" in big_result["error"]["message"]
    assert fits_result["status"] == "created"
    assert list(WalletEvent.objects.values_list("provider_event_id", flat=True)) == ["fits"]


def test_item_metadata_limit_counts_utf8_bytes_of_compact_json(signed_client, wallet, settings):
    settings.API_MAX_BODY_BYTES = 100
    # {"n":"ééé…"}: 8 bytes of syntax plus 2 bytes per é.
    at_limit, over = {"n": "é" * 46}, {"n": "é" * 47}
    body = send(
        signed_client,
        [
            item(wallet, provider_event_id="at", metadata=at_limit),
            item(wallet, provider_event_id="over", metadata=over),
        ],
    )
    assert [result["status"] for result in body["results"]] == ["created", "invalid"]


def test_null_item_metadata_is_invalid_naming_it(signed_client, wallet):
    body = send(signed_client, [{**item(wallet), "metadata": None}, item(wallet, metadata=...)])
    null_result, omitted_result = body["results"]
    assert null_result["status"] == "invalid"
    assert null_result["error"]["code"] == "validation_error"
    assert "metadata" in null_result["error"]["message"]
    assert omitted_result["status"] == "created"
    assert omitted_result["event"]["metadata"] == {}
