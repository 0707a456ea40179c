"""Money: exact Decimal amounts in an ISO 4217 currency, never floats."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

from dunning.domain.currencies import MINOR_UNITS

_PLAIN_NUMBER = re.compile(r"^-?\d+(\.\d+)?$")


def is_currency(code: str) -> bool:
    return code in MINOR_UNITS


def quantum(currency: str) -> Decimal:
    """The smallest unit of `currency` as a Decimal exponent: 0.01 for EUR, 1 for JPY, 0.001 for BHD."""
    return Decimal(1).scaleb(-MINOR_UNITS[currency])


def parse_decimal(text: str) -> Decimal:
    """A plain decimal number as written in a CSV cell; ValueError (in words) for anything else."""
    cleaned = text.strip()
    if not _PLAIN_NUMBER.match(cleaned):
        raise ValueError(
            "must be a plain number such as 1234.50 (no currency sign, no thousands separator, "
            "a dot for decimals)"
        )
    try:
        return Decimal(cleaned)
    except InvalidOperation as exc:  # pragma: no cover - the regex admits only valid decimals
        raise ValueError("is not a number") from exc


def to_minor_units(amount: Decimal, currency: str) -> Decimal:
    """`amount` at the currency's precision; ValueError when it has more (non-zero) decimals than that."""
    exact = amount.quantize(quantum(currency))
    if exact != amount:
        places = MINOR_UNITS[currency]
        unit = "no decimals" if places == 0 else f"at most {places} decimal{'s' if places > 1 else ''}"
        raise ValueError(f"has more decimals than {currency} allows ({currency} amounts have {unit})")
    return exact


def format_amount(amount: Decimal, currency: str) -> str:
    """Decimal string with exactly the currency's minor units, as written to events and reports."""
    return str(amount.quantize(quantum(currency)))
