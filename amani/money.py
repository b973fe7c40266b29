"""Exact money: ISO 4217 minor units from the maintained `iso4217` package, Decimal only."""

from __future__ import annotations

import re
from decimal import Decimal
from functools import cache

import iso4217

MAX_INTEGER_DIGITS = 18


class MoneyError(ValueError):
    """A currency or amount that the contract does not accept."""


@cache
def currency_exponent(code: str) -> int:
    """Minor-unit digits of an upper-case ISO 4217 code (NGN 2, UGX 0, KWD 3).

    Codes without minor units in the standard (XAU, XDR, …) are not money here.
    """
    if not isinstance(code, str) or not re.fullmatch(r"[A-Z]{3}", code):
        raise MoneyError("Currency must be an upper-case ISO 4217 code, such as NGN.")
    try:
        exponent = iso4217.Currency(code).exponent
    except ValueError:
        raise MoneyError(f"{code} is not an ISO 4217 currency code.") from None
    if exponent is None:
        raise MoneyError(f"{code} has no minor unit in ISO 4217 and cannot hold an amount.")
    return exponent


@cache
def _amount_pattern(exponent: int, signed: bool) -> re.Pattern[str]:
    sign = "-?" if signed else ""
    fraction = rf"(\.[0-9]{{1,{exponent}}})?" if exponent else ""
    return re.compile(rf"{sign}(0|[1-9][0-9]{{0,{MAX_INTEGER_DIGITS - 1}}}){fraction}")


def amount_parse(text: object, currency: str, *, signed: bool = False) -> Decimal:
    """Parse a decimal string for `currency`.

    Event amounts (`signed=False`) must be > 0; balances (`signed=True`) may be zero
    or negative. JSON numbers, exponents, padding and excess digits are refused.
    """
    exponent = currency_exponent(currency)
    if not isinstance(text, str):
        raise MoneyError('Amount must be a decimal string, such as "1500.00", not a JSON number.')
    if not _amount_pattern(exponent, signed).fullmatch(text):
        digits = "no decimal point" if exponent == 0 else f"at most {exponent} decimal places"
        raise MoneyError(
            f"Amount must be a plain decimal string with {digits} for {currency} "
            f"and at most {MAX_INTEGER_DIGITS} integer digits."
        )
    value = Decimal(text)
    if not signed and value <= 0:
        raise MoneyError("Amount must be greater than zero.")
    return value


def amount_format(value: Decimal, currency: str) -> str:
    """Render with exactly the currency's minor-unit digits."""
    exponent = currency_exponent(currency)
    return str(value.quantize(Decimal(1).scaleb(-exponent)))


def amount_display(value: Decimal, currency: str) -> str:
    """`amount_format` for pages (the admin): a row the API would never have stored is shown as it is."""
    try:
        return amount_format(value, currency)
    except (MoneyError, ArithmeticError):
        return str(value)
