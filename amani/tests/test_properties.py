"""Property tests (hypothesis) for the signing scheme and for amount parsing."""

from __future__ import annotations

import re
from decimal import Decimal

import iso4217
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from amani import signing
from amani.money import MoneyError, amount_parse

# --- signing -------------------------------------------------------------------------

key_ids = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-", min_size=1, max_size=64)
secrets_ = st.text(min_size=1, max_size=80).filter(lambda s: "\x00" not in s)
nonces = st.from_regex(r"[A-Za-z0-9_-]{16,64}", fullmatch=True)
methods = st.sampled_from(["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"])
paths = st.from_regex(r"/[A-Za-z0-9/%._~-]{0,80}", fullmatch=True)
queries = st.from_regex(r"[A-Za-z0-9=&%._~+-]{0,80}", fullmatch=True)
bodies = st.binary(max_size=512)
timestamps = st.integers(min_value=0, max_value=10**12 - 1)

request_parts = st.fixed_dictionaries(
    {"ts": timestamps, "nonce": nonces, "method": methods, "path": paths, "query": queries, "body": bodies}
)


def _sign(secret: str, parts: dict) -> str:
    return signing.signature(secret, signing.string_to_sign(**parts))


@settings(max_examples=150, deadline=None)
@given(key_id=key_ids, secret=secrets_, parts=request_parts)
def test_header_round_trips_and_verifies(key_id, secret, parts):
    header = signing.authorization_header(key_id=key_id, secret=secret, **parts)
    credentials = signing.parse_authorization(header)
    assert credentials == signing.Credentials(key_id, parts["ts"], parts["nonce"], credentials.signature)
    assert re.fullmatch(r"[0-9a-f]{64}", credentials.signature)
    assert signing.signatures_equal(_sign(secret, parts), credentials.signature)


@settings(max_examples=150, deadline=None)
@given(key_id=key_ids, parts=request_parts, order=st.permutations(range(4)), data=st.data())
def test_parameters_parse_in_any_order_with_any_scheme_case(key_id, parts, order, data):
    header = signing.authorization_header(key_id=key_id, secret="s3cret", **parts)
    scheme, _, params = header.partition(" ")
    items = [item.strip() for item in params.split(",")]
    separators = [data.draw(st.sampled_from([",", ", ", " ,  "])) for _ in range(3)]
    reordered = items[order[0]] + "".join(sep + items[i] for sep, i in zip(separators, order[1:], strict=True))
    cased = "".join(data.draw(st.sampled_from([c.lower(), c.upper()])) for c in scheme)
    assert signing.parse_authorization(f"{cased} {reordered}") == signing.parse_authorization(header)


def _flip_one_byte(value: bytes, data) -> bytes:
    index = data.draw(st.integers(min_value=0, max_value=len(value) - 1))
    replacement = data.draw(st.integers(min_value=0, max_value=255).filter(lambda b: b != value[index]))
    return value[:index] + bytes([replacement]) + value[index + 1 :]


@settings(max_examples=300, deadline=None)
@given(
    secret=secrets_,
    parts=request_parts,
    field=st.sampled_from(["ts", "nonce", "method", "path", "query", "body"]),
    data=st.data(),
)
def test_any_single_byte_change_breaks_the_signature(secret, parts, field, data):
    original = _sign(secret, parts)
    raw = parts["body"] if field == "body" else str(parts[field]).encode()
    assume(raw)  # an empty query or body has no byte to change
    flipped = _flip_one_byte(raw, data)
    changed = dict(parts)
    if field == "body":
        changed["body"] = flipped
    elif field == "ts":
        assume(flipped.isdigit())
        changed["ts"] = flipped.decode()
    else:
        changed[field] = flipped.decode("latin-1")
        # The method is signed upper-cased, as servers see it: a case-only change is no change.
        assume(field != "method" or changed["method"].upper() != parts["method"])
    assert not signing.signatures_equal(original, _sign(secret, changed))


@settings(max_examples=300, deadline=None)
@given(secret=secrets_, parts=request_parts, data=st.data())
def test_any_change_to_the_signature_or_the_secret_fails(secret, parts, data):
    good = _sign(secret, parts)
    assert not signing.signatures_equal(good, _flip_one_byte(good.encode(), data).decode("latin-1"))
    other_secret = _flip_one_byte(secret.encode(), data).decode("utf-8", errors="replace")
    assume(other_secret != secret)
    assert not signing.signatures_equal(good, _sign(other_secret, parts))


# --- amounts -------------------------------------------------------------------------

CURRENCIES = sorted(c.code for c in iso4217.Currency if c.exponent is not None)


def contract_pattern(exponent: int, *, signed: bool) -> re.Pattern[str]:
    """API.md's amount regex, written out independently of amani.money."""
    fraction = rf"(\.[0-9]{{1,{exponent}}})?" if exponent else ""
    return re.compile(("-?" if signed else "") + r"(0|[1-9][0-9]{0,17})" + fraction)


@st.composite
def currency_and_contract_amount(draw, signed: bool = False):
    code = draw(st.sampled_from(CURRENCIES))
    exponent = iso4217.Currency(code).exponent
    text = draw(st.from_regex(contract_pattern(exponent, signed=signed), fullmatch=True))
    return code, exponent, text


@settings(max_examples=500, deadline=None)
@given(case=currency_and_contract_amount())
def test_every_contract_amount_parses_to_its_exact_decimal(case):
    code, _, text = case
    if Decimal(text) == 0:
        with pytest.raises(MoneyError):
            amount_parse(text, code)
        return
    value = amount_parse(text, code)
    assert type(value) is Decimal
    assert value == Decimal(text)
    assert str(value) == text  # no rounding, no float detour


@settings(max_examples=300, deadline=None)
@given(case=currency_and_contract_amount(signed=True))
def test_signed_balances_accept_zero_and_negatives(case):
    code, _, text = case
    value = amount_parse(text, code, signed=True)
    assert type(value) is Decimal
    assert value == Decimal(text)


amount_like = st.one_of(
    st.text(max_size=30),
    st.text(alphabet="0123456789.-+eE ", max_size=25),
    st.from_regex(r"[+-]?[0-9]{0,21}(\.[0-9]{0,6})?([eE][+-]?[0-9]{1,3})?", fullmatch=True),
    st.sampled_from(["1e3", " 1.00", "+1", ".5", "01.00", "1.", "NaN", "Infinity", "-0", "1_000", "\u0661"]),
)


@settings(max_examples=600, deadline=None)
@given(code=st.sampled_from(CURRENCIES), text=amount_like, signed=st.booleans())
def test_accepts_exactly_the_contract_regex(code, text, signed):
    exponent = iso4217.Currency(code).exponent
    expected = bool(contract_pattern(exponent, signed=signed).fullmatch(text)) and (signed or Decimal(text) > 0)
    try:
        value = amount_parse(text, code, signed=signed)
    except MoneyError:
        assert not expected, f"{text!r} ({code}) matches the contract but was refused"
    else:
        assert expected, f"{text!r} ({code}) was accepted against the contract"
        assert type(value) is Decimal


@settings(max_examples=200, deadline=None)
@given(
    code=st.sampled_from(CURRENCIES),
    number=st.one_of(st.floats(allow_nan=True), st.integers(), st.decimals(allow_nan=False), st.none(), st.booleans()),
)
def test_json_numbers_and_other_types_are_refused(code, number):
    with pytest.raises(MoneyError):
        amount_parse(number, code)
