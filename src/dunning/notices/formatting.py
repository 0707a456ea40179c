"""How a notice writes money, rates, dates and counts in the customer's locale (Babel, CLDR), and in which
locale: the formatting that the templates' filters (templating.py) and the PDF letters (pdf.py) share."""

from __future__ import annotations

import copy
import functools
import logging
import re
import unicodedata
from datetime import date
from decimal import Decimal

import babel
import babel.dates
import babel.numbers

from dunning.domain.money import quantum

logger = logging.getLogger(__name__)

FALLBACK_LANGUAGE = "en"
# A bare "en" is formatted the British way ("3 March 2027", not Babel's American "March 3, 2027"): it is
# what the shipped English has always said, and a US customer whose locale says en_US still gets US dates.
_BARE_LANGUAGE_LOCALES = {"en": "en_GB"}


@functools.lru_cache(maxsize=64)
def format_locale(locale: str, language: str) -> babel.Locale:
    """The Babel locale a notice in `language` templates is formatted with, for a customer in `locale`.

    The customer's own locale when the templates are in their language (so "hu_HU" and "ro_MD" keep their
    territory's conventions); the language alone when Babel does not know that locale; and English when
    the templates fell back to English, because a notice with English words and Romanian dates reads oddly.
    """
    candidates = [locale.replace("-", "_")] if language_of(locale) == language else []
    candidates.append(_BARE_LANGUAGE_LOCALES.get(language, language))
    for candidate in candidates:
        try:
            parsed = babel.Locale.parse(_BARE_LANGUAGE_LOCALES.get(candidate, candidate))
        except (babel.UnknownLocaleError, ValueError):
            logger.warning(
                "Babel does not know the locale %r; formatting for %r instead", candidate, language
            )
            continue
        # Babel resolves some aliases to another language ("iw" is "he"); the words are in `language`.
        if parsed.language == language:
            return parsed
    return babel.Locale.parse(_BARE_LANGUAGE_LOCALES[FALLBACK_LANGUAGE])


# The digit zero of each numbering system a locale may write its numbers in by default (CLDR's
# numberingSystems.xml; the other nine follow it in Unicode). Babel has each system's symbols (decimal and
# group separators) but not its digits, and formats every number and date with ASCII digits.
_ZERO_DIGITS = {
    "latn": "0",
    "arab": "\u0660",  # Arabic-Indic ٠-٩ (ar in Egypt, Saudi Arabia, Iraq, ...)
    "arabext": "\u06f0",  # Extended Arabic-Indic ۰-۹ (fa, ps, ur_IN)
    "beng": "\u09e6",
    "deva": "\u0966",
    "mymr": "\u1040",
}


def numbering_system(locale: babel.Locale | str) -> str:
    """The numbering system a notice writes the locale's numbers in: CLDR's default for the locale ("arabext"
    for fa, "latn" for ar in Babel 2.18's CLDR, "arab" for ar_EG), or "latn" when dunning does not know its
    digits (so that the separators and the digits always belong to the same system)."""
    system = babel.Locale.parse(locale).default_numbering_system
    return system if system in _ZERO_DIGITS else "latn"


@functools.lru_cache(maxsize=64)
def _digit_table(system: str) -> dict[int, str]:
    zero = ord(_ZERO_DIGITS[system])
    return {ord("0") + digit: chr(zero + digit) for digit in range(10)}


def _digits(locale: babel.Locale) -> dict[int, str]:
    """A str.translate table from ASCII digits to the locale's (empty for a locale that writes ASCII)."""
    system = numbering_system(locale)
    return {} if system == "latn" else _digit_table(system)


def _exact(value: object) -> Decimal:
    # A float has already lost the exact amount; refuse it instead of printing a rounded guess.
    if isinstance(value, float) or not isinstance(value, Decimal | int | str):
        raise TypeError(f"a notice formats exact numbers (Decimal, int or str), not {type(value).__name__}")
    return Decimal(value)


def format_money(value: Decimal, currency: str, locale: babel.Locale | str) -> str:
    """`value` in `currency` as the locale writes money: "€1,280.50", "1.280,50 EUR", "1 280,50 €", and in
    the locale's own digits ("€ ۱٬۲۸۰٫۵۰" in Persian)."""
    locale = babel.Locale.parse(locale)
    # The currency's ISO 4217 minor units (dunning.domain.money), not Babel's CLDR digits, which differ for a
    # few
    # currencies: the notice must show the same figure as the ledger, the events and the invoice.
    exponent = quantum(currency)
    places = -int(exponent.as_tuple().exponent)
    pattern = copy.copy(locale.currency_formats["standard"])
    pattern.frac_prec = (places, places)
    formatted = babel.numbers.format_currency(
        _exact(value).quantize(exponent),
        currency,
        format=pattern,
        locale=locale,
        currency_digits=False,
        numbering_system=numbering_system(locale),
    )
    return _currency_spacing(formatted, babel.numbers.get_currency_symbol(currency, locale)).translate(
        _digits(locale)
    )


def _currency_spacing(formatted: str, symbol: str) -> str:
    """CLDR's currency spacing, which Babel leaves out: a symbol that meets a digit with a letter gets a
    no-break space between them ("BHD 1.500", "RON 80.50"), a sign does not ("€80.50")."""
    at = formatted.find(symbol)
    if not symbol or at < 0:
        return formatted
    end = at + len(symbol)
    if end < len(formatted) and formatted[end].isdigit() and _needs_space(symbol[-1]):
        formatted = f"{formatted[:end]}\xa0{formatted[end:]}"
    if at > 0 and formatted[at - 1].isdigit() and _needs_space(symbol[0]):
        formatted = f"{formatted[:at]}\xa0{formatted[at:]}"
    return formatted


def _needs_space(character: str) -> bool:
    # CLDR's currencyMatch [[:^S:]&[:^Z:]]: anything but a symbol or a separator.
    return unicodedata.category(character)[0] not in "SZ"


def format_rate(value: Decimal | int | str, locale: babel.Locale | str) -> str:
    """A rate given in percent (Decimal("10.15") is 10.15 %) with the locale's sign, spacing and decimal
    separator, and as many decimals as it was given."""
    locale = babel.Locale.parse(locale)
    rate = _exact(value)
    places = max(0, -int(rate.as_tuple().exponent))
    pattern = copy.copy(locale.percent_formats[None])
    pattern.frac_prec = (places, places)
    formatted = babel.numbers.format_percent(
        rate / 100, format=pattern, locale=locale, numbering_system=numbering_system(locale)
    )
    return formatted.translate(_digits(locale))


def format_long_date(value: date, locale: babel.Locale | str) -> str:
    """The locale's long date: "15 March 2027", "15 martie 2027", "2027. március 15.", "۱۵ مارس ۲۰۲۷"."""
    locale = babel.Locale.parse(locale)
    # Babel writes the day and the year of every locale in ASCII digits.
    return babel.dates.format_date(value, format="long", locale=locale).translate(_digits(locale))


def format_number(value: int | Decimal | str, locale: babel.Locale | str) -> str:
    """A count (of days, of invoices) as the locale writes it: "30", "1,000", "۳۰"."""
    locale = babel.Locale.parse(locale)
    formatted = babel.numbers.format_decimal(
        _exact(value), locale=locale, numbering_system=numbering_system(locale)
    )
    return formatted.translate(_digits(locale))


def language_of(locale: str) -> str:
    """The language part of a locale: "hu_HU" and "hu-HU" give "hu"."""
    return locale.replace("-", "_").split("_", 1)[0].lower()


# Only ASCII whitespace separates words: the no-break spaces Babel puts inside amounts ("1 280,50 €") and
# Russian dates (before the year's abbreviation) must keep them on one line.
BREAKABLE_SPACE = re.compile(r"[ \t\n\r\f\v]+")
