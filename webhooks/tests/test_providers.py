"""Each provider's module on its documented sample: verification and the payload read exactly."""

from __future__ import annotations

import hashlib
import hmac
import json
from decimal import Decimal

import pytest

from webhooks.providers import PROVIDERS, fincra, flutterwave, paystack
from webhooks.providers.base import Movement, NotRecorded, js_stringify, payload_parse
from webhooks.tests.conftest import (
    FINCRA_KEY,
    FLUTTERWAVE_HASH,
    PAYSTACK_SECRET,
    compact,
    sample,
    sample_bytes,
    signature_headers,
)


def read(module, payload) -> Movement | NotRecorded:
    """As the endpoint reads a body: through the exact parser, never a binary float."""
    return module.interpret(payload_parse(compact(payload) if isinstance(payload, dict) else payload))


def test_registry_names_every_provider_once():
    assert set(PROVIDERS) == {"paystack", "flutterwave", "fincra"}


# --- Paystack ---------------------------------------------------------------------------------


def test_paystack_sample_is_a_deposit_in_minor_units():
    result = read(paystack, sample_bytes("paystack_charge_success"))
    assert result == Movement(
        reference="qTPrJoy9Bx",
        event_type="deposit",
        amount=Decimal("100.00"),
        currency="NGN",
        occurred_at="2016-09-30T21:10:19.000Z",
        wallet_field="provider_customer_id",
        wallet_key="CUS_qo38as2hpsgk2r0",
    )


@pytest.mark.parametrize("metadata", [0, "", None, {"cart_id": 398}])
def test_paystack_metadata_of_any_shape_is_not_read(metadata):
    payload = sample("paystack_charge_success")
    payload["data"]["metadata"] = metadata
    assert isinstance(read(paystack, payload), Movement)


@pytest.mark.parametrize(
    ("amount", "currency", "expected"),
    [(150050, "NGN", Decimal("1500.50")), (1500, "UGX", Decimal("1500")), (1001, "KWD", Decimal("1.001"))],
)
def test_paystack_amount_is_minor_units_of_the_currency(amount, currency, expected):
    payload = sample("paystack_charge_success")
    payload["data"].update(amount=amount, currency=currency)
    result = read(paystack, payload)
    assert result.amount == expected and str(result.amount) == str(expected)


@pytest.mark.parametrize("amount", [1500.5, "150050", 0, -100, True, None])
def test_paystack_amount_that_is_not_a_positive_integer_is_invalid(amount):
    payload = sample("paystack_charge_success")
    payload["data"]["amount"] = amount
    result = read(paystack, payload)
    assert isinstance(result, NotRecorded) and result.outcome == "invalid" and result.reference == "qTPrJoy9Bx"


@pytest.mark.parametrize(
    ("field", "value"), [("event", "transfer.success"), ("event", "charge.dispute.create"), ("status", "failed")]
)
def test_paystack_other_events_and_failed_charges_are_ignored(field, value):
    payload = sample("paystack_charge_success")
    (payload if field == "event" else payload["data"])[field] = value
    assert read(paystack, payload).outcome == "ignored"


@pytest.mark.parametrize("currency", ["ngn", "XXX", "NAIRA", None, 566])
def test_paystack_unreadable_currency_is_invalid(currency):
    payload = sample("paystack_charge_success")
    payload["data"]["currency"] = currency
    assert read(paystack, payload).outcome == "invalid"


def test_paystack_verifies_the_raw_body_and_its_json_stringify_form():
    raw = sample_bytes("paystack_charge_success")  # pretty-printed, as published
    assert paystack.verify(headers=signature_headers("paystack", raw), body=raw, secrets=(PAYSTACK_SECRET.encode(),))
    # Paystack's sample code signs JSON.stringify(req.body): the compact form.
    stringified = signature_headers("paystack", js_stringify(raw))
    assert paystack.verify(headers=stringified, body=raw, secrets=(PAYSTACK_SECRET.encode(),))


def test_paystack_refuses_another_key_uppercase_hex_and_a_missing_header():
    raw = sample_bytes("paystack_charge_success")
    secrets = (PAYSTACK_SECRET.encode(),)
    wrong = signature_headers("paystack", raw, secret="sk_test_other")
    upper = {"X-Paystack-Signature": signature_headers("paystack", raw)["X-Paystack-Signature"].upper()}
    assert not paystack.verify(headers=wrong, body=raw, secrets=secrets)
    assert not paystack.verify(headers=upper, body=raw, secrets=secrets)
    assert not paystack.verify(headers={}, body=raw, secrets=secrets)
    assert not paystack.verify(headers={"X-Paystack-Signature": "é"}, body=raw, secrets=secrets)


def test_any_of_several_secrets_verifies_during_a_rotation():
    raw = sample_bytes("paystack_charge_success")
    headers = signature_headers("paystack", raw, secret="sk_new")
    assert paystack.verify(headers=headers, body=raw, secrets=(b"sk_old", b"sk_new"))
    assert not paystack.verify(headers=headers, body=raw, secrets=(b"sk_old",))


# --- Flutterwave ------------------------------------------------------------------------------


def test_flutterwave_sample_is_a_deposit_in_major_units():
    result = read(flutterwave, sample_bytes("flutterwave_charge_completed"))
    assert result == Movement(
        reference="PeterEkene/FLW270177170",
        event_type="deposit",
        amount=Decimal("100"),
        currency="NGN",
        occurred_at="2020-07-06T19:17:04.000Z",
        wallet_field="provider_customer_id",
        wallet_key="215604089",
    )


@pytest.mark.parametrize(
    ("number", "expected"),
    [("101.51", "101.51"), ("0.1", "0.1"), ("1e2", "100"), ("1.10", "1.1"), ("2.675", None), ("100.001", None)],
)
def test_flutterwave_amount_is_read_exactly_as_written(number, expected):
    body = compact(sample("flutterwave_charge_completed")).replace(b'"amount":100,', f'"amount":{number},'.encode())
    result = read(flutterwave, body)
    if expected is None:  # more decimals than NGN has
        assert result.outcome == "invalid" and "decimals" in result.reason
    else:
        assert result.amount == Decimal(expected)


def test_flutterwave_large_amount_keeps_every_digit():
    body = compact(sample("flutterwave_charge_completed")).replace(b'"amount":100,', b'"amount":123456789012345.67,')
    assert read(flutterwave, body).amount == Decimal("123456789012345.67")  # a float would give ...345.67187


@pytest.mark.parametrize("amount", ["100", True, -5, 0, None, [100]])
def test_flutterwave_amount_that_is_not_a_positive_number_is_invalid(amount):
    payload = sample("flutterwave_charge_completed")
    payload["data"]["amount"] = amount
    assert read(flutterwave, payload).outcome == "invalid"


@pytest.mark.parametrize("status", ["failed", "pending", "SUCCESSFUL"])
def test_flutterwave_unsuccessful_charge_is_ignored(status):
    payload = sample("flutterwave_charge_completed")
    payload["data"]["status"] = status
    assert read(flutterwave, payload).outcome == "ignored"


def test_flutterwave_v3_hash_and_v4_signature_verify():
    raw = sample_bytes("flutterwave_charge_completed")
    secrets = (FLUTTERWAVE_HASH.encode(),)
    assert flutterwave.verify(headers=signature_headers("flutterwave", raw), body=raw, secrets=secrets)
    assert flutterwave.verify(headers=signature_headers("flutterwave-v4", raw), body=raw, secrets=secrets)
    assert flutterwave.verify(headers={"flutterwave-signature": FLUTTERWAVE_HASH}, body=raw, secrets=secrets)


def test_flutterwave_refuses_a_wrong_hash_or_a_signature_of_another_body():
    raw = sample_bytes("flutterwave_charge_completed")
    secrets = (FLUTTERWAVE_HASH.encode(),)
    assert not flutterwave.verify(headers={"verif-hash": "guess"}, body=raw, secrets=secrets)
    other = signature_headers("flutterwave-v4", raw + b" ")
    assert not flutterwave.verify(headers=other, body=raw, secrets=secrets)
    assert not flutterwave.verify(headers={}, body=raw, secrets=secrets)


# --- Fincra -----------------------------------------------------------------------------------


def test_fincra_sample_is_a_deposit_of_the_amount_received():
    result = read(fincra, sample_bytes("fincra_collection_successful"))
    assert result == Movement(
        reference="7126huha-01ef-4ua58-a97c-a2182784a2c6",
        event_type="deposit",
        amount=Decimal("99"),
        currency="NGN",
        occurred_at="2023-09-13T11:37:14.030Z",
        wallet_field="provider_account_id",
        wallet_key="19c2ea4b66ea3j92188ab2de",
    )


def test_fincra_failed_collection_sample_is_ignored():
    assert read(fincra, sample_bytes("fincra_collection_failed")).outcome == "ignored"


def test_fincra_charge_successful_virtual_account_object_and_currency_fallback():
    payload = sample("fincra_collection_successful")
    payload["event"] = "charge.successful"
    payload["data"]["virtualAccount"] = {"id": "va_77", "accountNumber": "4231242764"}
    del payload["data"]["destinationCurrency"]
    payload["data"]["currency"] = "GHS"
    del payload["data"]["createdAt"]
    result = read(fincra, payload)
    assert (result.wallet_key, result.currency, result.occurred_at) == ("va_77", "GHS", None)


def test_fincra_verifies_the_json_stringify_form_of_a_pretty_printed_body():
    raw = '{\n  "event": "collection.successful",\n  "data": {"amountReceived": 1.50, "name": "Ọlá"}\n}'.encode()
    signed_form = '{"event":"collection.successful","data":{"amountReceived":1.5,"name":"Ọlá"}}'.encode()
    key = FINCRA_KEY.encode()
    headers = {"signature": hmac.new(key, signed_form, hashlib.sha512).hexdigest()}
    assert fincra.verify(headers=headers, body=raw, secrets=(key,))
    # Python's json.dumps(..., separators=(",", ":")) escapes "Ọlá" as ASCII: not JSON.stringify's bytes.
    ascii_form = json.dumps(json.loads(raw), separators=(",", ":")).encode()
    assert ascii_form != signed_form
    headers = {"signature": hmac.new(key, ascii_form, hashlib.sha512).hexdigest()}
    assert not fincra.verify(headers=headers, body=raw, secrets=(key,))
