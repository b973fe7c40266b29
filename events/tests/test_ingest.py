"""POST /api/v1/wallets/{wallet_id}/events/ingest: the contract's outcome table and bad input."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from amani.actors import Actor
from amani.errors import NotFound
from audit.models import AuditRecord
from events.models import BalanceBucket, WalletEvent
from events.services import EventConflict, event_ingest
from events.tests.factories import event_body
from events.validation import EventInput
from wallets.tests.factories import WalletFactory

pytestmark = pytest.mark.django_db


def ingest_url(wallet) -> str:
    return f"/api/v1/wallets/{wallet.public_id}/events/ingest"


def post(client, wallet, body, **kwargs):
    return client.post(ingest_url(wallet), body, **kwargs)


# --- the outcome table -------------------------------------------------------------------------


def test_new_event_is_201_with_the_representation(signed_client, wallet):
    event_id = uuid.uuid4()
    response = post(signed_client, wallet, event_body(event_id=str(event_id), provider_event_id="fincra_evt_789"))
    assert response.status_code == 201
    assert "Idempotent-Replayed" not in response.headers
    body = response.json()
    created_at = body.pop("created_at")
    assert body == {
        "id": str(event_id),
        "wallet_id": str(wallet.public_id),
        "provider": "fincra",
        "event_type": "deposit",
        "amount": "1500.00",
        "currency": "NGN",
        "provider_event_id": "fincra_evt_789",
        "metadata": {"channel": "bank_transfer"},
        "occurred_at": "2026-11-20T14:02:18Z",
    }
    assert dt.datetime.fromisoformat(created_at).tzinfo is not None
    event = WalletEvent.objects.get()
    assert (event.public_id, event.wallet_id, event.amount) == (event_id, wallet.pk, Decimal("1500.00"))


def test_new_event_writes_its_audit_record_and_bucket(signed_client, wallet):
    response = post(signed_client, wallet, event_body(), headers={"Idempotency-Key": "k-audit"})
    record = AuditRecord.objects.get(action="ingest_event")
    assert record.resource_type == "wallet_event"
    assert record.resource_id == response.json()["id"]
    assert record.user_id == wallet.user_id
    assert record.actor_type == "api_key"
    assert record.details["idempotency_key"] == "k-audit"
    bucket = BalanceBucket.objects.get(wallet=wallet)
    assert (bucket.currency, bucket.ledger, bucket.event_count) == ("NGN", Decimal("1500.00"), 1)


def test_generated_id_when_no_event_id(signed_client, wallet):
    response = post(signed_client, wallet, event_body())
    assert response.status_code == 201
    assert uuid.UUID(response.json()["id"]) == WalletEvent.objects.get().public_id


@pytest.mark.parametrize(
    ("first", "again", "headers"),
    [
        pytest.param({"event_id": "11111111-1111-4111-8111-111111111111", "provider_event_id": ...}, {}, {}, id="id"),
        pytest.param({"provider_event_id": "evt_same"}, {}, {}, id="provider_event_id"),
        pytest.param({"provider_event_id": ...}, {}, {"Idempotency-Key": "key-same"}, id="idempotency_key"),
        pytest.param(  # one earlier event found by all three keys is one match, not three
            {"event_id": "22222222-2222-4222-8222-222222222222", "provider_event_id": "evt_all"},
            {},
            {"Idempotency-Key": "key-all"},
            id="all_three_keys",
        ),
        pytest.param(
            {"provider_event_id": "evt_meta"}, {"metadata": {"other": True}}, {}, id="metadata_is_not_content"
        ),
        pytest.param({"provider_event_id": "evt_num"}, {"amount": "1500.0"}, {}, id="numeric_value_of_amount"),
        pytest.param(
            {"provider_event_id": "evt_tz"}, {"occurred_at": "2026-11-20T15:02:18+01:00"}, {}, id="same_instant"
        ),
    ],
)
def test_matching_event_with_same_content_is_a_200_replay(signed_client, wallet, first, again, headers):
    body = event_body(**first)
    created = post(signed_client, wallet, body, headers=headers)
    assert created.status_code == 201
    replay = post(signed_client, wallet, {**body, **again}, headers=headers)
    assert replay.status_code == 200
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert replay.json() == created.json()  # the earlier event, as stored
    assert WalletEvent.objects.count() == 1
    assert AuditRecord.objects.filter(action="ingest_event").count() == 1
    assert BalanceBucket.objects.get(wallet=wallet).event_count == 1


@pytest.mark.parametrize(
    ("first", "again", "headers"),
    [
        pytest.param(
            {"event_id": "22222222-2222-4222-8222-222222222222", "provider_event_id": ...},
            {"amount": "1500.01"},
            {},
            id="id_other_amount",
        ),
        pytest.param({"provider_event_id": "evt_c"}, {"occurred_at": "2026-11-20T14:02:19Z"}, {}, id="pe_other_time"),
        pytest.param({"provider_event_id": ...}, {"event_type": "refund"}, {"Idempotency-Key": "k-c"}, id="key_type"),
        pytest.param({"provider_event_id": "evt_cur"}, {"currency": "KES"}, {}, id="other_currency"),
        pytest.param(
            {"provider_event_id": ..., "event_id": "33333333-3333-4333-8333-333333333333"},
            {"provider_event_id": "now_with_pe"},
            {},
            id="provider_event_id_is_content",
        ),
    ],
)
def test_matching_event_with_different_content_is_409(signed_client, wallet, first, again, headers):
    body = event_body(**first)
    created = post(signed_client, wallet, body, headers=headers)
    conflict = post(signed_client, wallet, event_body(**{**first, **again}), headers=headers)
    assert conflict.status_code == 409
    error = conflict.json()["error"]
    assert error["code"] == "event_conflict"
    assert error["existing_event_id"] == created.json()["id"]
    assert WalletEvent.objects.count() == 1


def test_event_id_reused_on_another_wallet_is_409(signed_client, wallet):
    event_id = str(uuid.uuid4())
    first = post(signed_client, wallet, event_body(event_id=event_id))
    other = WalletFactory(provider="fincra")
    response = post(signed_client, other, event_body(event_id=event_id))
    assert response.status_code == 409
    assert response.json()["error"]["existing_event_id"] == first.json()["id"]


def test_same_provider_event_id_on_two_providers_are_two_events(signed_client):
    fincra, paystack = WalletFactory(provider="fincra"), WalletFactory(provider="paystack")
    assert post(signed_client, fincra, event_body(provider_event_id="evt_1")).status_code == 201
    assert post(signed_client, paystack, event_body(provider_event_id="evt_1")).status_code == 201


def test_keys_matching_two_different_events_is_409(signed_client, wallet):
    first = post(signed_client, wallet, event_body(provider_event_id="evt_a"))
    post(signed_client, wallet, event_body(provider_event_id=...), headers={"Idempotency-Key": "k-b"})
    response = post(signed_client, wallet, event_body(provider_event_id="evt_a"), headers={"Idempotency-Key": "k-b"})
    assert response.status_code == 409
    assert response.json()["error"]["existing_event_id"] == first.json()["id"]
    assert WalletEvent.objects.count() == 2


def test_idempotency_keys_are_a_namespace_apart_from_wallets(signed_client, wallet):
    response = post(signed_client, wallet, event_body(provider_event_id=...), headers={"Idempotency-Key": "shared"})
    assert response.status_code == 201
    assert WalletEvent.objects.get().idempotency_key == "shared"


def test_no_dedup_key_is_400_dedup_key_required(signed_client, wallet):
    response = post(signed_client, wallet, event_body(provider_event_id=...))
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "dedup_key_required"
    assert not WalletEvent.objects.exists()


def test_unknown_wallet_is_404(signed_client):
    response = signed_client.post(f"/api/v1/wallets/{uuid.uuid4()}/events/ingest", event_body())
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_wallet_id_that_is_not_a_uuid_is_404(signed_client):
    response = signed_client.post("/api/v1/wallets/123/events/ingest", event_body())
    assert (response.status_code, response.json()["error"]["code"]) == (404, "not_found")


def test_provider_equal_to_the_wallets_is_accepted(signed_client, wallet):
    assert post(signed_client, wallet, event_body(provider="fincra")).status_code == 201


def test_amount_renders_with_the_currency_digits(signed_client):
    wallet = WalletFactory()
    cases = {("UGX", "1500"): "1500", ("KWD", "1.5"): "1.500", ("NGN", "7"): "7.00", ("KES", "0.01"): "0.01"}
    for (currency, amount), rendered in cases.items():
        response = post(signed_client, wallet, event_body(currency=currency, amount=amount))
        assert response.status_code == 201, response.json()
        assert response.json()["amount"] == rendered


def test_scope_events_write_is_required(signed_client_for, wallet):
    client = signed_client_for(["events:read", "wallets:write"])
    response = post(client, wallet, event_body())
    assert (response.status_code, response.json()["error"]["code"]) == (403, "insufficient_scope")


def test_unsigned_request_is_401(client, wallet):
    response = client.post(ingest_url(wallet), event_body(), content_type="application/json")
    assert response.status_code == 401
    assert not WalletEvent.objects.exists()


# --- bad input: a 4xx in the envelope, nothing written ------------------------------------------

BAD_FIELDS = [
    ("amount", "0"),
    ("amount", "0.00"),
    ("amount", "-1.00"),
    ("amount", 1500),
    ("amount", 1500.5),
    ("amount", "NaN"),
    ("amount", "Infinity"),
    ("amount", "1e3"),
    ("amount", " 1.00"),
    ("amount", "1.00 "),
    ("amount", "+1"),
    ("amount", ".5"),
    ("amount", "01.00"),
    ("amount", "1."),
    ("amount", "1.000"),
    ("amount", "1" * 19),
    ("amount", ""),
    ("currency", "ngn"),
    ("currency", "XYZ"),
    ("currency", "NG"),
    ("currency", 566),
    ("currency", ["NGN"]),
    ("occurred_at", "2026-11-20T14:02:18"),
    ("occurred_at", "2026-11-20"),
    ("occurred_at", "20 Nov 2026"),
    ("occurred_at", 1763647338),
    ("occurred_at", "2026-02-30T10:00:00Z"),
    ("occurred_at", "0001-01-01T00:00:00+01:00"),
    ("metadata", {"note": "a\u0000b"}),
    ("metadata", {"a\u0000": 1}),
    ("metadata", {"deep": [{"x": "\u0000"}]}),
    ("metadata", ["not", "an", "object"]),
    ("metadata", "text"),
    ("event_id", "not-a-uuid"),
    ("event_id", 12345),
    ("event_type", "payout"),
    ("event_type", ["deposit"]),
    ("provider_event_id", ""),
    ("provider_event_id", "x" * 256),
    ("provider_event_id", 789),
    ("provider_event_id", "bad\u0000id"),
    ("provider", "paystack"),
    ("provider", 1),
]


@pytest.mark.parametrize(("field", "value"), BAD_FIELDS, ids=[f"{f}={v!r}"[:60] for f, v in BAD_FIELDS])
def test_bad_field_is_400_naming_it_and_writes_nothing(signed_client, wallet, field, value):
    response = post(signed_client, wallet, event_body(**{field: value}), headers={"Idempotency-Key": "k-bad"})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert field in error["fields"]
    assert not WalletEvent.objects.exists()
    assert not AuditRecord.objects.filter(action="ingest_event").exists()
    assert not BalanceBucket.objects.exists()


@pytest.mark.parametrize("field", ["event_type", "amount", "currency", "occurred_at"])
def test_missing_required_field_is_400(signed_client, wallet, field):
    body = event_body()
    del body[field]
    response = post(signed_client, wallet, body)
    assert response.status_code == 400
    assert response.json()["error"]["fields"][field] == ["This field is required."]


def test_amount_with_decimals_for_a_currency_without_minor_units_is_400(signed_client, wallet):
    response = post(signed_client, wallet, event_body(currency="UGX", amount="1500.00"))
    assert response.status_code == 400
    assert "amount" in response.json()["error"]["fields"]


def test_eighteen_integer_digits_are_accepted(signed_client, wallet):
    response = post(signed_client, wallet, event_body(amount="9" * 18 + ".99"))
    assert response.status_code == 201
    assert response.json()["amount"] == "9" * 18 + ".99"


def test_far_future_occurred_at_is_400_and_near_future_is_accepted(signed_client, wallet):
    now = dt.datetime.now(dt.UTC)
    late = (now + dt.timedelta(minutes=6)).isoformat()
    response = post(signed_client, wallet, event_body(occurred_at=late))
    assert response.status_code == 400 and "occurred_at" in response.json()["error"]["fields"]
    soon = (now + dt.timedelta(minutes=4)).isoformat()
    assert post(signed_client, wallet, event_body(occurred_at=soon)).status_code == 201


def test_fractional_seconds_and_offsets_are_kept_as_the_instant(signed_client, wallet):
    response = post(signed_client, wallet, event_body(occurred_at="2026-11-20T14:02:18.123456789-05:30"))
    assert response.status_code == 201
    assert response.json()["occurred_at"] == "2026-11-20T19:32:18.123456Z"


def test_non_finite_number_in_metadata_is_400(signed_client, wallet):
    raw = json.dumps(event_body())[:-1] + ', "metadata": {"x": 1e400}}'
    response = post(signed_client, wallet, raw)
    assert response.status_code == 400
    assert "metadata" in response.json()["error"]["fields"]
    assert not WalletEvent.objects.exists()


@pytest.mark.parametrize("key", ["", "x" * 256, "caf\u00e9", "tab\there"])
def test_bad_idempotency_key_is_400_naming_the_header(signed_client, wallet, key):
    response = post(signed_client, wallet, event_body(), headers={"Idempotency-Key": key})
    assert response.status_code == 400
    assert "Idempotency-Key" in response.json()["error"]["fields"]
    assert not WalletEvent.objects.exists()


@pytest.mark.parametrize("raw", ["[]", '"text"', "{not json", "null"])
def test_body_that_is_not_a_json_object_is_invalid_json(signed_client, wallet, raw):
    response = post(signed_client, wallet, raw)
    assert (response.status_code, response.json()["error"]["code"]) == (400, "invalid_json")
    assert not WalletEvent.objects.exists()


def test_other_content_type_is_415(signed_client, wallet):
    response = post(signed_client, wallet, "a=b", content_type="application/x-www-form-urlencoded")
    assert (response.status_code, response.json()["error"]["code"]) == (415, "unsupported_media_type")


def test_get_on_ingest_is_405(signed_client, wallet):
    response = signed_client.get(ingest_url(wallet))
    assert (response.status_code, response.json()["error"]["code"]) == (405, "method_not_allowed")


def test_unknown_fields_are_ignored(signed_client, wallet):
    response = post(signed_client, wallet, event_body(surprise="ignored", id="whatever"))
    assert response.status_code == 201
    assert "surprise" not in response.json()


# --- the service and its round trips -----------------------------------------------------------


def ingest(wallet, **overrides):
    fields = {
        "event_type": "deposit",
        "amount": Decimal("10.00"),
        "currency": "NGN",
        "occurred_at": dt.datetime(2026, 11, 20, tzinfo=dt.UTC),
        "provider_event_id": "svc_1",
    }
    fields.update(overrides)
    return event_ingest(wallet_id=wallet.public_id, item=EventInput(**fields), actor=Actor.system())


def test_service_new_event_is_one_statement(wallet, django_assert_num_queries):
    # Wallet, INSERT … ON CONFLICT DO NOTHING, bucket upsert and audit INSERT: one prepared statement.
    with django_assert_num_queries(1):
        ingestion = ingest(wallet)
    assert ingestion.created
    assert WalletEvent.objects.get(public_id=ingestion.event.public_id).wallet_id == wallet.pk


def test_service_replay_costs_no_more_round_trips_than_a_new_event(wallet):
    ingest(wallet)
    with CaptureQueriesContext(connection) as new:
        ingest(wallet, provider_event_id="svc_2")
    with CaptureQueriesContext(connection) as replay:
        ingestion = ingest(wallet, provider_event_id="svc_2")
    assert not ingestion.created
    # The same statement reads the events that blocked the insert.
    assert len(replay) == len(new) == 1


def test_service_conflict_raises_naming_the_existing_event(wallet):
    first = ingest(wallet)
    with pytest.raises(EventConflict) as raised:
        ingest(wallet, amount=Decimal("11.00"))
    assert raised.value.extra["existing_event_id"] == str(first.event.public_id)


def test_request_round_trips_are_bounded(signed_client, wallet, django_assert_max_num_queries):
    post(signed_client, wallet, event_body(provider_event_id="warm"))  # first request loads the key
    # Authentication (key lookup, nonce), then the one ingest statement: new or replayed.
    with django_assert_max_num_queries(3):
        assert post(signed_client, wallet, event_body()).status_code == 201
    with django_assert_max_num_queries(3):
        assert post(signed_client, wallet, event_body(provider_event_id="warm")).status_code == 200


def test_service_unknown_wallet_is_not_found_and_writes_nothing():
    with pytest.raises(NotFound):
        event_ingest(
            wallet_id=uuid.uuid4(),
            item=EventInput(
                event_type="deposit",
                amount=Decimal("1.00"),
                currency="NGN",
                occurred_at=dt.datetime(2026, 11, 20, tzinfo=dt.UTC),
                provider_event_id="nowhere",
            ),
            actor=Actor.system(),
        )
    assert not WalletEvent.objects.exists()
    assert not AuditRecord.objects.exists()


def test_null_metadata_is_400_naming_it(signed_client, wallet):
    body = {**event_body(), "metadata": None}
    response = post(signed_client, wallet, body)
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert (error["code"], list(error["fields"])) == ("validation_error", ["metadata"])
    assert not WalletEvent.objects.exists()


def test_omitted_metadata_is_stored_as_an_empty_object(signed_client, wallet):
    response = post(signed_client, wallet, event_body(metadata=...))
    assert response.status_code == 201, response.content
    assert response.json()["metadata"] == {}
