"""Paystack: `X-Paystack-Signature`, HMAC-SHA512 of the body with the secret key; `charge.success`.

Paystack's own sample computes the HMAC over `JSON.stringify(req.body)`, so the
re-serialised body verifies too. Amounts are integers in the currency's minor units.
`data.metadata` may be an object, `0` or `""`: it is never read.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from webhooks.providers.base import (
    IGNORED,
    SHA512,
    Movement,
    NotRecorded,
    deposit,
    get_path,
    header_bytes,
    hmac_hex_matches,
    minor_units,
    raw_or_stringified,
    text_or_none,
)

NAME = "paystack"
SECRET_SETTING = "PAYSTACK_SECRET_KEY"  # noqa: S105 (a setting's name)
SIGNATURE_HEADER = "X-Paystack-Signature"


def verify(*, headers: Mapping[str, str], body: bytes, secrets: tuple[bytes, ...]) -> bool:
    return hmac_hex_matches(header_bytes(headers, SIGNATURE_HEADER), raw_or_stringified(body), secrets, SHA512)


def interpret(payload: dict[str, Any]) -> Movement | NotRecorded:
    data = payload.get("data")
    reference = text_or_none(get_path(payload, "data", "reference"))
    if payload.get("event") != "charge.success" or not isinstance(data, dict):
        return NotRecorded(IGNORED, "Not a charge.success event.", reference)
    if data.get("status") != "success":
        return NotRecorded(IGNORED, "The charge is not successful.", reference)
    return deposit(
        reference=data.get("reference"),
        currency=data.get("currency"),
        amount=data.get("amount"),
        units=minor_units,
        occurred_at=data.get("paid_at"),
        wallet_field="provider_customer_id",
        wallet_key=get_path(data, "customer", "customer_code"),
    )
