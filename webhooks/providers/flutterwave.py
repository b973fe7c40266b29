"""Flutterwave: `verif-hash` (v3) equal to the dashboard's secret hash, or `flutterwave-signature` (v4),
the base64 HMAC-SHA256 of the raw body keyed with that hash (or the hash itself); `charge.completed`.

Amounts are JSON numbers in major units, read exactly. The customer id is a number in
v3 payloads; wallets hold it as text.
"""

from __future__ import annotations

import base64
import hmac
from collections.abc import Mapping
from typing import Any

from webhooks.providers.base import (
    IGNORED,
    SHA256,
    Movement,
    NotRecorded,
    deposit,
    get_path,
    header_bytes,
    major_units,
    text_or_none,
)

NAME = "flutterwave"
SECRET_SETTING = "FLUTTERWAVE_SECRET_HASH"  # noqa: S105 (a setting's name)
SIGNATURE_HEADER = "verif-hash"
V4_SIGNATURE_HEADER = "flutterwave-signature"


def verify(*, headers: Mapping[str, str], body: bytes, secrets: tuple[bytes, ...]) -> bool:
    v3 = header_bytes(headers, SIGNATURE_HEADER)
    v4 = header_bytes(headers, V4_SIGNATURE_HEADER)
    for secret in secrets:
        if v3 and hmac.compare_digest(v3, secret):
            return True
        if v4 and (
            hmac.compare_digest(v4, base64.b64encode(hmac.new(secret, body, SHA256).digest()))
            or hmac.compare_digest(v4, secret)
        ):
            return True
    return False


def interpret(payload: dict[str, Any]) -> Movement | NotRecorded:
    data = payload.get("data")
    reference = text_or_none(get_path(payload, "data", "flw_ref"))
    if payload.get("event") != "charge.completed" or not isinstance(data, dict):
        return NotRecorded(IGNORED, "Not a charge.completed event.", reference)
    if data.get("status") != "successful":
        return NotRecorded(IGNORED, "The charge is not successful.", reference)
    return deposit(
        reference=data.get("flw_ref"),
        currency=data.get("currency"),
        amount=data.get("amount"),
        units=major_units,
        occurred_at=data.get("created_at"),
        wallet_field="provider_customer_id",
        wallet_key=get_path(data, "customer", "id"),
    )
