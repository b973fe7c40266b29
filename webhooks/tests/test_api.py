"""POST /api/v1/webhooks/{provider} as API.md's "Provider webhooks" fixes it, on the providers' own samples."""

from __future__ import annotations

import datetime as dt
import json
import logging
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from prometheus_client import REGISTRY

from amani.json_bounds import DOCUMENT_MAX_DEPTH
from audit.models import AuditRecord
from events.models import WalletEvent
from wallets.tests.factories import WalletFactory
from webhooks.models import WebhookDelivery
from webhooks.tests.conftest import (
    FINCRA_KEY,
    PAYSTACK_SECRET,
    compact,
    deliver,
    sample,
    sample_bytes,
    signature_headers,
)

pytestmark = pytest.mark.django_db


def counter(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def ingest_body(reference: str, amount: str, occurred_at: str) -> dict:
    return {
        "event_type": "deposit",
        "amount": amount,
        "currency": "NGN",
        "provider_event_id": reference,
        "occurred_at": occurred_at,
    }


# --- created, and the delivery stored as received -------------------------------------------------


def test_paystack_sample_as_published_creates_a_deposit(client, paystack_wallet):
    body = sample_bytes("paystack_charge_success")  # pretty-printed, metadata 0

    response = deliver(client, "paystack", body)

    assert response.status_code == 200
    event = WalletEvent.objects.get()
    assert response.json() == {"status": "created", "event_id": str(event.public_id)}
    assert (event.wallet, event.provider, event.event_type) == (paystack_wallet, "paystack", "deposit")
    assert (event.amount, event.currency, event.provider_event_id) == (Decimal("100.00"), "NGN", "qTPrJoy9Bx")
    assert event.occurred_at == dt.datetime(2016, 9, 30, 21, 10, 19, tzinfo=dt.UTC)
    delivery = WebhookDelivery.objects.get()
    assert delivery.body.encode() == body  # as received, byte for byte
    assert (delivery.provider, delivery.outcome, delivery.event, delivery.wallet) == (
        "paystack",
        "created",
        event,
        paystack_wallet,
    )
    assert (delivery.event_name, delivery.reference) == ("charge.success", "qTPrJoy9Bx")
    assert event.metadata == {"webhook_delivery_id": str(delivery.public_id), "webhook_event": "charge.success"}
    audit = AuditRecord.objects.get(action="ingest_event")
    assert (audit.actor_type, audit.actor_id, audit.resource_id) == ("system", "webhook:paystack", str(event.public_id))


def test_paystack_signature_over_json_stringify_form_is_accepted(client, paystack_wallet):
    body = sample_bytes("paystack_charge_success")
    headers = signature_headers("paystack", compact(json.loads(body)))
    assert deliver(client, "paystack", body, headers).json()["status"] == "created"


@pytest.mark.parametrize("variant", ["flutterwave", "flutterwave-v4"])
def test_flutterwave_sample_creates_a_deposit(client, flutterwave_wallet, variant):
    body = sample_bytes("flutterwave_charge_completed")

    response = deliver(client, "flutterwave", body, signature_headers(variant, body))

    assert response.json()["status"] == "created"
    event = WalletEvent.objects.get()
    assert (event.wallet, event.amount, event.provider_event_id) == (
        flutterwave_wallet,
        Decimal("100.00"),
        "PeterEkene/FLW270177170",
    )


def test_flutterwave_amount_is_stored_exactly(client, flutterwave_wallet):
    body = sample_bytes("flutterwave_charge_completed").replace(b'"amount": 100,', b'"amount": 101.51,')
    assert deliver(client, "flutterwave", body).json()["status"] == "created"
    assert WalletEvent.objects.get().amount == Decimal("101.51")


def test_fincra_sample_signed_as_fincra_does_creates_a_deposit(client, fincra_wallet):
    body = sample_bytes("fincra_collection_successful")
    headers = signature_headers("fincra", compact(json.loads(body)))  # Fincra signs JSON.stringify(payload)

    response = deliver(client, "fincra", body, headers)

    assert response.json()["status"] == "created"
    event = WalletEvent.objects.get()
    assert (event.wallet, event.amount, event.currency) == (fincra_wallet, Decimal("99.00"), "NGN")
    assert event.occurred_at == dt.datetime(2023, 9, 13, 11, 37, 14, 30000, tzinfo=dt.UTC)


# --- duplicate, conflict, unmatched, ignored, invalid ------------------------------------------


def test_provider_retry_is_a_duplicate_with_the_same_event(client, paystack_wallet):
    body = sample_bytes("paystack_charge_success")
    first = deliver(client, "paystack", body).json()

    retry = deliver(client, "paystack", body).json()

    assert retry == {"status": "duplicate", "event_id": first["event_id"]}
    assert WalletEvent.objects.count() == 1
    assert list(WebhookDelivery.objects.order_by("id").values_list("outcome", flat=True)) == ["created", "duplicate"]


def test_api_ingest_of_the_same_reference_first_makes_the_webhook_a_duplicate(client, signed_client, paystack_wallet):
    api = signed_client.post(
        f"/api/v1/wallets/{paystack_wallet.public_id}/events/ingest",
        ingest_body("qTPrJoy9Bx", "100.00", "2016-09-30T21:10:19Z"),
    )
    assert api.status_code == 201

    response = deliver(client, "paystack", sample_bytes("paystack_charge_success"))

    assert response.json() == {"status": "duplicate", "event_id": api.json()["id"]}
    assert WalletEvent.objects.count() == 1


def test_reference_known_with_other_content_is_a_conflict_and_changes_nothing(client, signed_client, paystack_wallet):
    api = signed_client.post(
        f"/api/v1/wallets/{paystack_wallet.public_id}/events/ingest",
        ingest_body("qTPrJoy9Bx", "999.00", "2016-09-30T21:10:19Z"),
    )

    response = deliver(client, "paystack", sample_bytes("paystack_charge_success"))

    assert response.status_code == 200
    assert response.json() == {"status": "conflict", "event_id": None}
    assert list(WalletEvent.objects.values_list("amount", flat=True)) == [Decimal("999.00")]
    delivery = WebhookDelivery.objects.get()
    assert delivery.outcome == "conflict" and api.json()["id"] in delivery.reason


def test_no_wallet_yet_is_unmatched_and_stored(client):
    response = deliver(client, "paystack", sample_bytes("paystack_charge_success"))

    assert response.json() == {"status": "unmatched", "event_id": None}
    delivery = WebhookDelivery.objects.get()
    assert (delivery.outcome, delivery.wallet, delivery.reference) == ("unmatched", None, "qTPrJoy9Bx")
    assert "CUS_qo38as2hpsgk2r0" in delivery.reason
    assert not WalletEvent.objects.exists()


def test_wallet_of_another_provider_with_the_same_customer_id_does_not_match(client):
    WalletFactory(provider="flutterwave", provider_customer_id="CUS_qo38as2hpsgk2r0")
    assert deliver(client, "paystack", sample_bytes("paystack_charge_success")).json()["status"] == "unmatched"


def test_failed_collection_is_ignored_and_stored(client, fincra_wallet):
    response = deliver(client, "fincra", sample_bytes("fincra_collection_failed"))

    assert response.json() == {"status": "ignored", "event_id": None}
    assert WebhookDelivery.objects.get().outcome == "ignored"
    assert not WalletEvent.objects.exists()


@pytest.mark.parametrize(
    ("old", "new"),
    [(b'"amount": 100,', b'"amount": 100.001,'), (b'"currency": "NGN"', b'"currency": "NAIRA"')],
)
def test_unreadable_amount_or_currency_is_invalid_and_visible_to_support(client, flutterwave_wallet, old, new):
    body = sample_bytes("flutterwave_charge_completed").replace(old, new, 1)

    response = deliver(client, "flutterwave", body)

    assert response.json() == {"status": "invalid", "event_id": None}
    delivery = WebhookDelivery.objects.get()
    assert delivery.outcome == "invalid" and delivery.reason and delivery.body.encode() == body
    assert not WalletEvent.objects.exists()


def test_unreadable_time_is_invalid(client, paystack_wallet):
    payload = sample("paystack_charge_success")
    payload["data"]["paid_at"] = "30/09/2016"
    assert deliver(client, "paystack", compact(payload)).json()["status"] == "invalid"


def test_fincra_without_created_at_occurs_at_the_first_delivery_and_its_retry_is_a_duplicate(client, fincra_wallet):
    payload = sample("fincra_collection_successful")
    del payload["data"]["createdAt"]
    body = compact(payload)

    first = deliver(client, "fincra", body).json()
    retry = deliver(client, "fincra", body).json()

    assert first["status"] == "created" and retry == {"status": "duplicate", "event_id": first["event_id"]}
    first_delivery = WebhookDelivery.objects.order_by("id").first()
    assert WalletEvent.objects.get().occurred_at == first_delivery.received_at


# --- refusals: nothing stored --------------------------------------------------------------------


@pytest.mark.parametrize("provider", ["stripe", "mono", "PAYSTACK"])
def test_unknown_provider_is_404(client, provider):
    response = client.post(f"/api/v1/webhooks/{provider}", b"{}", content_type="application/json")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_provider_without_a_secret_is_off(client, settings):
    settings.FINCRA_WEBHOOK_KEY = []
    body = sample_bytes("fincra_collection_successful")
    response = deliver(client, "fincra", body)
    assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"X-Paystack-Signature": "0" * 128},
        {"X-Paystack-Signature": "not hex at all"},
        signature_headers("paystack", b"{}", secret="sk_test_someone_else"),
    ],
)
def test_missing_or_wrong_signature_is_401_and_stores_nothing(client, paystack_wallet, headers):
    body = sample_bytes("paystack_charge_success")
    failures = counter("amani_webhook_verification_failures_total", provider="paystack")

    response = deliver(client, "paystack", body, headers)

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "bad_signature"
    assert response["WWW-Authenticate"] == 'Webhook-Signature header="X-Paystack-Signature"'
    assert not WebhookDelivery.objects.exists() and not WalletEvent.objects.exists()
    assert counter("amani_webhook_verification_failures_total", provider="paystack") == failures + 1


def test_body_over_1_mib_is_413(client):
    body = b'{"pad": "' + b"x" * (1024 * 1024) + b'"}'
    response = deliver(client, "paystack", body)
    assert response.status_code == 413 and response.json()["error"]["code"] == "payload_too_large"


@pytest.mark.parametrize("body", [b"[1, 2]", b'"text"', b"{", b"", b"\xff\xfe{}", b'{"a": NaN}'])
def test_verified_body_that_is_not_a_json_object_is_400_invalid_json(client, body):
    response = deliver(client, "fincra", body)
    assert response.status_code == 400 and response.json()["error"]["code"] == "invalid_json"
    assert not WebhookDelivery.objects.exists()


def test_a_verified_body_nested_past_the_one_json_bound_is_400_invalid_json(client):
    # The same bound as every API body (amani.json_bounds.DOCUMENT_MAX_DEPTH), not Python's recursion limit.
    deep = b'{"a": ' * (DOCUMENT_MAX_DEPTH + 1) + b"1" + b"}" * (DOCUMENT_MAX_DEPTH + 1)
    response = deliver(client, "fincra", deep)
    assert response.status_code == 400 and response.json()["error"]["code"] == "invalid_json"
    assert not WebhookDelivery.objects.exists()


def test_only_post_is_allowed(client):
    response = client.get("/api/v1/webhooks/paystack")
    assert response.status_code == 405 and response.json()["error"]["code"] == "method_not_allowed"


def test_another_content_type_is_still_received(client, paystack_wallet):
    """A provider's verified delivery is never refused for its header: it would retry forever."""
    body = sample_bytes("paystack_charge_success")
    headers = signature_headers("paystack", body)
    response = client.generic("POST", "/api/v1/webhooks/paystack", body, content_type="text/plain", headers=headers)
    assert response.json()["status"] == "created"


# --- cost, log and metrics -------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)  # the service's transaction is then the outermost, as in production
def test_statements_per_delivery(client, paystack_wallet):
    body = sample_bytes("paystack_charge_success")
    # New: BEGIN, wallet SELECT, the ingest statement (event, bucket and audit row: events.queries),
    # delivery INSERT, COMMIT. No authentication statements: the signature is checked in memory.
    with CaptureQueriesContext(connection) as new:
        assert deliver(client, "paystack", body).json()["status"] == "created"
    # Retry: the same; the ingest statement returns the earlier event instead.
    with CaptureQueriesContext(connection) as retry:
        assert deliver(client, "paystack", body).json()["status"] == "duplicate"
    assert (len(new), len(retry)) == (5, 5), [q["sql"][:80] for q in new.captured_queries + retry.captured_queries]


@pytest.mark.django_db(transaction=True)
def test_statements_for_ignored_and_unmatched(client):
    with CaptureQueriesContext(connection) as ignored:
        deliver(client, "fincra", sample_bytes("fincra_collection_failed"))
    with CaptureQueriesContext(connection) as unmatched:
        deliver(client, "paystack", sample_bytes("paystack_charge_success"))
    # Ignored: the delivery INSERT alone. Unmatched: BEGIN, wallet SELECT, delivery INSERT, COMMIT.
    assert (len(ignored), len(unmatched)) == (1, 4), [q["sql"][:60] for q in unmatched.captured_queries]


def test_access_log_carries_the_outcome_never_the_body_or_secret(client, paystack_wallet, caplog):
    body = sample_bytes("paystack_charge_success")
    with caplog.at_level(logging.DEBUG):
        deliver(client, "paystack", body)
        deliver(client, "paystack", body, {"X-Paystack-Signature": "bad"})

    access = [record for record in caplog.records if record.name == "amani.access"]
    assert [(r.route, r.status, r.outcome) for r in access] == [
        ("/api/v1/webhooks/<str:provider>", 200, "created"),
        ("/api/v1/webhooks/<str:provider>", 401, "bad_signature"),
    ]
    logged = caplog.text + " ".join(json.dumps(vars(r), default=str) for r in caplog.records)
    assert "CUS_qo38as2hpsgk2r0" not in logged and "bojack" not in logged and PAYSTACK_SECRET not in logged


def test_deliveries_are_counted_by_provider_and_outcome(client, fincra_wallet):
    name = "amani_webhook_deliveries_total"
    before = {outcome: counter(name, provider="fincra", outcome=outcome) for outcome in ["created", "ignored"]}
    deliver(client, "fincra", sample_bytes("fincra_collection_successful"))
    deliver(client, "fincra", sample_bytes("fincra_collection_failed"))
    assert counter("amani_webhook_deliveries_total", provider="fincra", outcome="created") == before["created"] + 1
    assert counter("amani_webhook_deliveries_total", provider="fincra", outcome="ignored") == before["ignored"] + 1


def test_rotation_accepts_old_and_new_keys(client, settings, fincra_wallet):
    settings.FINCRA_WEBHOOK_KEY = ["fincra-new-key", FINCRA_KEY]
    body = sample_bytes("fincra_collection_successful")
    new_key = signature_headers("fincra", body, secret="fincra-new-key")
    assert deliver(client, "fincra", body, new_key).json()["status"] == "created"
    assert deliver(client, "fincra", body, signature_headers("fincra", body)).json()["status"] == "duplicate"


@pytest.mark.parametrize(
    ("path", "value", "outcome"),
    [
        (("event",), "charge.success\u0000", "ignored"),
        (("event",), "\ud800", "ignored"),
        (("data", "reference"), "ref\u0000", "invalid"),
        (("data", "reference"), "\udfff", "invalid"),
        (("data", "reference"), "r" * 300, "invalid"),
        (("data", "customer", "customer_code"), "CUS\u0000", "unmatched"),
        (("data", "customer", "customer_code"), "\ud83d", "unmatched"),
        (("data", "customer"), [1, 2], "unmatched"),
        (("data", "paid_at"), "2016-09-30T21:10:19\u0000Z", "invalid"),
        (("data", "currency"), "NG\u0000", "invalid"),
        (("data",), "not an object", "ignored"),
    ],
)
def test_odd_values_a_provider_could_send_are_decided_never_a_5xx(client, paystack_wallet, path, value, outcome):
    payload = sample("paystack_charge_success")
    target = payload
    for name in path[:-1]:
        target = target[name]
    target[path[-1]] = value
    body = json.dumps(payload).encode()  # ASCII: NUL and lone surrogates travel as \u escapes, as in JSON

    response = deliver(client, "paystack", body)

    assert response.status_code == 200, response.content
    assert response.json()["status"] == outcome
    assert WebhookDelivery.objects.get().body.encode() == body
