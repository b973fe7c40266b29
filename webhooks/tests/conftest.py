"""Shared by the webhook tests: the providers' samples, signed as each provider signs them, and their wallets."""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import json
from pathlib import Path
from typing import Any

import pytest
from django.test import Client

from wallets.models import Wallet
from wallets.tests.factories import WalletFactory

FIXTURES = Path(__file__).parent / "fixtures"
PAYSTACK_SECRET = "sk_test_paystack_0123456789abcdef"
FLUTTERWAVE_HASH = "flw-secret-hash-0123456789"
FINCRA_KEY = "fincra-webhook-key-0123456789"
SECRETS = {
    "PAYSTACK_SECRET_KEY": [PAYSTACK_SECRET],
    "FLUTTERWAVE_SECRET_HASH": [FLUTTERWAVE_HASH],
    "FINCRA_WEBHOOK_KEY": [FINCRA_KEY],
}


def sample(name: str) -> dict[str, Any]:
    """A documented example payload, as a fresh dict (tests change fields of their own copy)."""
    return copy.deepcopy(json.loads((FIXTURES / f"{name}.json").read_text()))


def sample_bytes(name: str) -> bytes:
    """A documented example payload exactly as the file holds it (pretty-printed, as published)."""
    return (FIXTURES / f"{name}.json").read_bytes()


def compact(payload: dict[str, Any]) -> bytes:
    """What a Node.js provider sends and signs: JSON.stringify (equal to this for these payloads)."""
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()


def signature_headers(provider: str, body: bytes, *, secret: str | None = None) -> dict[str, str]:
    """The header each provider sends with `body`."""
    if provider == "paystack":
        key = (secret or PAYSTACK_SECRET).encode()
        return {"X-Paystack-Signature": hmac.new(key, body, hashlib.sha512).hexdigest()}
    if provider == "fincra":
        key = (secret or FINCRA_KEY).encode()
        return {"signature": hmac.new(key, body, hashlib.sha512).hexdigest()}
    if provider == "flutterwave":
        return {"verif-hash": secret or FLUTTERWAVE_HASH}
    if provider == "flutterwave-v4":
        key = (secret or FLUTTERWAVE_HASH).encode()
        return {"flutterwave-signature": base64.b64encode(hmac.new(key, body, hashlib.sha256).digest()).decode()}
    raise ValueError(provider)


def deliver(client: Client, provider: str, body: bytes, headers: dict[str, str] | None = None):
    """POST a delivery signed as the provider signs it (unless `headers` are given)."""
    if headers is None:
        headers = signature_headers(provider, body)
    return client.generic(
        "POST", f"/api/v1/webhooks/{provider}", body, content_type="application/json", headers=headers
    )


@pytest.fixture(autouse=True)
def webhook_secrets(settings):
    for name, value in SECRETS.items():
        setattr(settings, name, value)


@pytest.fixture
def paystack_wallet(db) -> Wallet:
    return WalletFactory(provider="paystack", provider_customer_id="CUS_qo38as2hpsgk2r0")


@pytest.fixture
def flutterwave_wallet(db) -> Wallet:
    return WalletFactory(provider="flutterwave", provider_customer_id="215604089")


@pytest.fixture
def fincra_wallet(db) -> Wallet:
    return WalletFactory(provider="fincra", provider_account_id="19c2ea4b66ea3j92188ab2de")
