"""What the provider modules share: the result of reading a payload, signature checks, exact amounts,
and the body as JavaScript's `JSON.stringify` writes it.

A provider module (one per provider, registered in `webhooks.providers`) exposes:

- `NAME`, the path segment and the wallets' `provider` value;
- `SECRET_SETTING`, the name of the setting holding its comma-separated secrets;
- `SIGNATURE_HEADER`, named in the `WWW-Authenticate` of a refused delivery;
- `verify(*, headers, body, secrets) -> bool`, the provider's own signature scheme;
- `interpret(payload) -> Movement | NotRecorded`, pure: no database, no clock.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Protocol

from amani.json_bounds import document_loads, text_storable
from amani.money import MAX_INTEGER_DIGITS, MoneyError, currency_exponent

IGNORED = "ignored"
INVALID = "invalid"
_MAX_AMOUNT = Decimal(10) ** MAX_INTEGER_DIGITS


@dataclass(frozen=True, slots=True)
class Movement:
    """A money movement the payload announces, read exactly; the wallet is named by one of its provider ids."""

    reference: str
    event_type: str
    amount: Decimal
    currency: str
    # As the provider wrote it (checked later as RFC 3339, like any ingest); None means
    # "the first delivery's received time" (Fincra without createdAt).
    occurred_at: object
    wallet_field: str  # "provider_customer_id" or "provider_account_id"
    wallet_key: str | None  # None: the payload names no wallet (unmatched)


@dataclass(frozen=True, slots=True)
class NotRecorded:
    """No event: `ignored` (not a movement this service records) or `invalid` (a movement that cannot be read)."""

    outcome: str
    reason: str
    reference: str | None = None


class ProviderModule(Protocol):
    NAME: str
    SECRET_SETTING: str
    SIGNATURE_HEADER: str

    def verify(self, *, headers: Mapping[str, str], body: bytes, secrets: tuple[bytes, ...]) -> bool: ...

    def interpret(self, payload: dict[str, Any]) -> Movement | NotRecorded: ...


class Unreadable(ValueError):
    """A field of a money movement that cannot be read; its message is stored with the delivery."""


# --- reading payloads -------------------------------------------------------------------------


def payload_parse(body: bytes) -> object:
    """The body as JSON, every number exact: fractions as Decimal (never a binary float), integers as int.

    ValueError when it is not strict UTF-8 JSON, holds NaN or Infinity, or nests deeper than
    every other body may (amani.json_bounds: one bound for every document).
    """
    return document_loads(body.decode("utf-8"), decoder=_EXACT_DECODER)


def _exact_int(text: str) -> int | Decimal:
    # Python refuses to convert integers of more than 4,300 digits (CVE-2020-10735); they are still JSON.
    try:
        return int(text)
    except ValueError:
        return Decimal(text)


def _refuse_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


_EXACT_DECODER = json.JSONDecoder(parse_float=Decimal, parse_int=_exact_int, parse_constant=_refuse_constant)


def get_path(payload: Mapping[str, Any], *names: str) -> object:
    """payload[a][b]…, or None when any step is missing or not an object."""
    value: object = payload
    for name in names:
        if not isinstance(value, dict):
            return None
        value = value.get(name)
    return value


def text_or_none(value: object) -> str | None:
    """A non-empty storable string as is, an integer as its digits (ids sent as JSON numbers), else None."""
    if isinstance(value, str):
        return value if value and text_storable(value) else None
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return None


def reference_of(value: object) -> str:
    """The provider's reference, which becomes `provider_event_id`: a non-empty string."""
    if not isinstance(value, str) or not value or not text_storable(value):
        raise Unreadable("The payment reference is missing, not a string, or holds NUL or a lone surrogate.")
    return value


def currency_of(value: object) -> str:
    if not isinstance(value, str):
        raise Unreadable("The currency is missing or not a string.")
    try:
        currency_exponent(value)
    except MoneyError as exc:
        raise Unreadable(str(exc)) from None
    return value


def _decimal_places(value: Decimal) -> int:
    """Digits after the point the value needs (101.510 needs 2), without rounding to a context."""
    _, digits, exponent = value.as_tuple()
    trailing = len(digits) - len("".join(map(str, digits)).rstrip("0"))
    return max(0, -(exponent + trailing))


def _checked(value: Decimal, currency: str) -> Decimal:
    if value <= 0:
        raise Unreadable("The amount must be greater than zero.")
    if value >= _MAX_AMOUNT:
        raise Unreadable(f"The amount has more than {MAX_INTEGER_DIGITS} integer digits.")
    return value


def major_units(value: object, currency: str) -> Decimal:
    """A JSON number in major units (parsed by payload_parse), exactly; refused when it needs more
    decimals than the currency has (100.001 NGN), is not positive, or is not a number."""
    if isinstance(value, bool) or not isinstance(value, int | Decimal):
        raise Unreadable("The amount is missing or not a JSON number.")
    amount = Decimal(value)
    if not amount.is_finite():
        raise Unreadable("The amount is not a finite number.")
    places = currency_exponent(currency)
    if _decimal_places(amount) > places:
        raise Unreadable(f"The amount has more decimals than {currency} has ({places}).")
    return _checked(amount, currency)


def minor_units(value: object, currency: str) -> Decimal:
    """A JSON integer in the currency's minor units (150050 NGN is 1500.50), exactly."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise Unreadable("The amount is missing or not an integer number of minor units.")
    return _checked(Decimal(value).scaleb(-currency_exponent(currency)), currency)


def deposit(
    *,
    reference: object,
    currency: object,
    amount: object,
    units: Callable[[object, str], Decimal],
    occurred_at: object,
    wallet_field: str,
    wallet_key: object,
) -> Movement | NotRecorded:
    """A deposit from a payload's fields as the provider wrote them, `amount` read by `units`
    (major_units or minor_units); INVALID naming the first unreadable one (currency, then
    reference, then amount)."""
    try:
        code = currency_of(currency)
        return Movement(
            reference=reference_of(reference),
            event_type="deposit",
            amount=units(amount, code),
            currency=code,
            occurred_at=occurred_at,
            wallet_field=wallet_field,
            wallet_key=text_or_none(wallet_key),
        )
    except Unreadable as exc:
        return NotRecorded(INVALID, str(exc), text_or_none(reference))


# --- signatures -------------------------------------------------------------------------------


def header_bytes(headers: Mapping[str, str], name: str) -> bytes:
    """A header's value as bytes for a constant-time comparison (b"" when absent)."""
    return headers.get(name, "").strip().encode("utf-8", "replace")


def hmac_hex_matches(
    signature: bytes, messages: Iterable[bytes | None], secrets: tuple[bytes, ...], digest: Callable[..., Any]
) -> bool:
    """Whether `signature` is the lowercase hex HMAC of one of the messages under one of the secrets.

    Messages are produced lazily: the re-serialised form is only built when the raw body did not match.
    """
    if not signature:
        return False
    for message in messages:
        if message is None:
            continue
        for secret in secrets:
            if hmac.compare_digest(hmac.new(secret, message, digest).hexdigest().encode(), signature):
                return True
    return False


def raw_or_stringified(body: bytes) -> Iterable[bytes | None]:
    """The raw body, then (only if asked for) JSON.stringify's form of it when that differs."""
    yield body
    stringified = js_stringify(body)
    yield stringified if stringified != body else None


SHA512 = hashlib.sha512
SHA256 = hashlib.sha256


# --- JSON.stringify ---------------------------------------------------------------------------

_ARRAY_INDEX = re.compile(r"0|[1-9][0-9]{0,9}")
_MAX_ARRAY_INDEX = 2**32 - 2
_STRING_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t"}
_NEEDS_ESCAPE = re.compile('["\\\\\x00-\x1f\ud800-\udfff]')


class _SlowPath(Exception):
    """A number the C encoder would not write as JavaScript does."""


def _js_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """An object as JSON.parse builds it: a repeated key keeps its first position and its last value;
    integer-like keys (array indices) come first in ascending order, then the others in order."""
    obj = dict(pairs)
    for key in obj:
        if key[:1].isdigit():
            break
    else:
        return obj
    indices = [key for key in obj if _ARRAY_INDEX.fullmatch(key) and int(key) <= _MAX_ARRAY_INDEX]
    if not indices:
        return obj
    ordered = {key: obj[key] for key in sorted(indices, key=int)}
    ordered.update((key, value) for key, value in obj.items() if key not in ordered)
    return ordered


def js_number(value: float) -> str:
    """Number.prototype.toString for a double, as JSON.stringify writes it (1.50 → 1.5, 1e2 → 100, 1e21 → 1e+21)."""
    if not math.isfinite(value):
        return "null"
    if value == 0:
        return "0"
    sign = "-" if value < 0 else ""
    _, digit_tuple, exponent = Decimal(repr(abs(value))).as_tuple()  # repr: the shortest round-trip digits
    digits = "".join(map(str, digit_tuple)).rstrip("0")
    exponent += len("".join(map(str, digit_tuple))) - len(digits)
    k = len(digits)
    n = exponent + k  # value = 0.digits * 10**n
    if k <= n <= 21:
        text = digits + "0" * (n - k)
    elif 0 < n <= 21:
        text = f"{digits[:n]}.{digits[n:]}"
    elif -6 < n <= 0:
        text = "0." + "0" * -n + digits
    else:
        e = n - 1
        mantissa = digits if k == 1 else f"{digits[0]}.{digits[1:]}"
        text = f"{mantissa}e{'+' if e >= 0 else '-'}{abs(e)}"
    return sign + text


def _js_string(text: str) -> str:
    def escape(match: re.Match[str]) -> str:
        char = match.group()
        return _STRING_ESCAPES.get(char) or f"\\u{ord(char):04x}"

    return '"' + _NEEDS_ESCAPE.sub(escape, text) + '"'


def _js_write(value: Any, out: list[str]) -> None:
    if isinstance(value, str):
        out.append(_js_string(value))
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif value is None:
        out.append("null")
    elif isinstance(value, float):
        out.append(js_number(value))
    elif isinstance(value, list):
        out.append("[")
        for index, item in enumerate(value):
            if index:
                out.append(",")
            _js_write(item, out)
        out.append("]")
    else:
        out.append("{")
        for index, (key, item) in enumerate(value.items()):
            if index:
                out.append(",")
            out.append(_js_string(key))
            out.append(":")
            _js_write(item, out)
        out.append("}")


def _c_number(text: str) -> int | float:
    """A JSON number as a value Python's C encoder writes exactly as JavaScript does, else _SlowPath.

    Integers below 2**53 print the same as the double they are in JavaScript; other doubles
    print the same (shortest round-trip digits, no exponent) between 1e-4 and 1e16.
    """
    value = float(text)
    if value.is_integer():
        if abs(value) < 2**53:
            return int(value)
    elif 1e-4 <= abs(value) < 1e16:
        return value
    raise _SlowPath


def _stringify_fast(text: str) -> bytes:
    """JSON.stringify's bytes through the C encoder; _SlowPath (or UnicodeEncodeError for a lone
    surrogate, which JavaScript escapes) when a value needs the careful writer."""
    value = json.loads(
        text, parse_float=_c_number, parse_int=_c_number, parse_constant=_refuse_constant, object_pairs_hook=_js_object
    )
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode("utf-8")


def js_stringify(body: bytes) -> bytes | None:
    """`JSON.stringify(JSON.parse(body))` as Node writes it, UTF-8 encoded; None when JSON.parse would refuse.

    Numbers are doubles in JavaScript, so they are read as floats here (and only here):
    what matters is reproducing the provider's bytes, not the amount. Keys keep their
    received order (after the integer-like keys, as JavaScript objects order them), no
    spaces, non-ASCII characters as they are, lone surrogates escaped.
    """
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return None
    try:
        return _stringify_fast(text)
    except (_SlowPath, UnicodeEncodeError):
        pass  # a rare number or a lone surrogate: the careful writer below
    except (ValueError, RecursionError):
        return None
    try:
        value = json.loads(
            text,
            parse_float=float,
            parse_int=float,
            parse_constant=_refuse_constant,
            object_pairs_hook=_js_object,
        )
        out: list[str] = []
        _js_write(value, out)
        return "".join(out).encode("utf-8")
    except (ValueError, RecursionError):
        return None
