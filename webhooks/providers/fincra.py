"""Fincra: `signature`, HMAC-SHA512 with the webhook key of the body as `JSON.stringify` writes it
(Fincra's documented check; the raw body verifies too); `collection.successful` and `charge.successful`.

Amounts are JSON numbers in major units, read exactly. The wallet is the virtual
account (its `id` when it is an object). Without `createdAt`, the event occurs at the
first delivery's received time, which the receiving service supplies.
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
    major_units,
    raw_or_stringified,
    text_or_none,
)

NAME = "fincra"
SECRET_SETTING = "FINCRA_WEBHOOK_KEY"  # noqa: S105 (a setting's name)
SIGNATURE_HEADER = "signature"
MONEY_EVENTS = frozenset({"collection.successful", "charge.successful"})


def verify(*, headers: Mapping[str, str], body: bytes, secrets: tuple[bytes, ...]) -> bool:
    return hmac_hex_matches(header_bytes(headers, SIGNATURE_HEADER), raw_or_stringified(body), secrets, SHA512)


def interpret(payload: dict[str, Any]) -> Movement | NotRecorded:
    data = payload.get("data")
    reference = text_or_none(get_path(payload, "data", "reference"))
    if payload.get("event") not in MONEY_EVENTS or not isinstance(data, dict):
        return NotRecorded(IGNORED, "Not a collection.successful or charge.successful event.", reference)
    account = data.get("virtualAccount")
    if isinstance(account, dict):
        account = account.get("id")
    return deposit(
        reference=data.get("reference"),
        currency=data.get("destinationCurrency") or data.get("currency"),
        amount=data.get("amountReceived"),
        units=major_units,
        occurred_at=data.get("createdAt"),  # None: the first delivery's received time
        wallet_field="provider_account_id",
        wallet_key=account,
    )
