"""The Idempotency-Key header's one rule, for every endpoint and command that takes a key (API.md)."""

from __future__ import annotations

import re

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter

IDEMPOTENCY_KEY_HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
# 1-255 printable ASCII characters; the anchored form is the OpenAPI `pattern`.
IDEMPOTENCY_KEY_PATTERN = r"^[\x20-\x7e]{1,255}$"
IDEMPOTENCY_KEY_MESSAGE = "Must be 1-255 printable ASCII characters."
_KEY_RE = re.compile(r"[\x20-\x7e]{1,255}")


def idempotency_key_valid(value: object) -> bool:
    return isinstance(value, str) and _KEY_RE.fullmatch(value) is not None


def idempotency_key_check(value: object) -> str:
    """The key itself; ValueError (with the contract's message) when it breaks the rule."""
    if not idempotency_key_valid(value):
        raise ValueError(IDEMPOTENCY_KEY_MESSAGE)
    return value  # type: ignore[return-value]


def idempotency_parameters(*, key: str, replayed: str) -> list[OpenApiParameter]:
    """The OpenAPI document's two headers: the request's Idempotency-Key, a replay's Idempotent-Replayed."""
    return [
        OpenApiParameter(
            IDEMPOTENCY_KEY_HEADER,
            OpenApiTypes.STR,
            OpenApiParameter.HEADER,
            pattern=IDEMPOTENCY_KEY_PATTERN,
            description=key,
        ),
        OpenApiParameter(
            REPLAYED_HEADER,
            OpenApiTypes.STR,
            OpenApiParameter.HEADER,
            enum=["true"],
            response=[200],
            description=replayed,
        ),
    ]
