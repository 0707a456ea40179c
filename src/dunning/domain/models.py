"""The domain model: accounts, invoices, payments and actions, validated with pydantic v2.

Every validation message names the field (by its CSV column name) and says what is wrong in words a
bookkeeper understands; `problems_from` turns a pydantic ValidationError into such (field, message) pairs.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from email.utils import parseaddr
from enum import StrEnum
from typing import Annotated, Any, Literal, Self
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from babel import Locale, UnknownLocaleError
from babel.core import get_global
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)

from dunning.domain.money import is_currency, parse_decimal, to_minor_units

_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]")
# The invisible bidi controls: embeddings and overrides (U+202A-U+202E), isolates (U+2066-U+2069) and the
# LRM, RLM and Arabic letter marks. Letters keep their own direction without them.
BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c")
_WITHOUT_BIDI_CONTROLS = dict.fromkeys(map(ord, BIDI_CONTROLS))
_SEGMENT = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


class FieldProblem(ValueError):
    """A validation failure that belongs to one named field (used by cross-field checks)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


@dataclass(frozen=True)
class Problem:
    field: str
    message: str


# --- field types -------------------------------------------------------------------------------------


def normalize_address(address: str) -> str:
    """The bare address, lower-case: SES reports may carry a display name ("Jane <jane@example.com>")."""
    bare = parseaddr(address)[1] or address
    return bare.strip().lower()


def strip_bidi_controls(text: str) -> str:
    """`text` without bidi controls. A customer's name or reference with a right-to-left override
    ("Evil\u202eLtd") would make whatever follows it on the line read backwards in a notice, a subject or
    the legal team's email, so it could pass for other words; Arabic and Persian letters are untouched."""
    return text.translate(_WITHOUT_BIDI_CONTROLS)


def _without_bidi_controls(value: Any) -> Any:
    return strip_bidi_controls(value) if isinstance(value, str) else value


def _single_line(value: str) -> str:
    if _CONTROL.search(value):
        raise ValueError("contains a line break or control character; write it on one line")
    return value


def _parse_iso_date(value: Any) -> Any:
    if isinstance(value, date):
        return value
    text = str(value).strip()
    if not _ISO_DATE.match(text):
        raise ValueError(f"'{text}' is not a date written YYYY-MM-DD (for example 2027-01-31)")
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise ValueError(f"'{text}' is not a real calendar date") from exc


def _parse_decimal(value: Any) -> Any:
    if isinstance(value, Decimal):
        return value
    return parse_decimal(str(value))


def _currency(value: str) -> str:
    code = value.strip().upper()
    if not is_currency(code):
        raise ValueError(f"'{value}' is not an ISO 4217 currency code such as EUR, USD, GBP or JPY")
    return code


def _emails(value: Any) -> tuple[str, ...]:
    raw = value if isinstance(value, list | tuple) else str(value).split(";")
    addresses = [part.strip() for part in raw if str(part).strip()]
    if not addresses:
        raise ValueError("needs at least one email address")
    normalized = []
    for address in addresses:
        _single_line(address)
        # Imported here: only the ingest validates addresses, and every function imports this module (the
        # package compiles its regexes at import, issue 12).
        from email_validator import EmailNotValidError, validate_email

        try:
            valid = validate_email(address, check_deliverability=False)
        except EmailNotValidError as exc:
            raise ValueError(f"'{address}' is not a valid email address ({exc})") from exc
        # SES takes 7-bit ASCII addresses only (no SMTPUTF8): an internationalised domain is stored in its
        # ASCII (IDNA, punycode) form; a non-ASCII local part has none, so SES could never send to it.
        if valid.ascii_email is None:
            raise ValueError(f"SES cannot send to a non-ASCII address (local part): '{address}'")
        normalized.append(valid.ascii_email)
    return tuple(dict.fromkeys(normalized))


def _locale(value: str) -> str:
    try:
        return str(Locale.parse(value.strip().replace("-", "_")))
    except (ValueError, UnknownLocaleError) as exc:
        raise ValueError(f"'{value}' is not a language code we know (for example en, ro, hu, ar)") from exc


def _timezone(value: str) -> str:
    name = value.strip()
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"'{value}' is not an IANA time zone such as Europe/Bucharest or UTC") from exc
    return name


@functools.cache
def _countries() -> frozenset[str]:
    # On first use: Babel's territory names load the whole "en" locale data, and only the ingest checks a
    # country (every function imports this module, issue 12).
    return frozenset(
        str(code) for code in Locale("en").territories if len(str(code)) == 2 and str(code).isalpha()
    )


def _country(value: str) -> str:
    code = value.strip().upper()
    if code not in _countries():
        raise ValueError(f"'{value}' is not a two-letter ISO 3166 country code such as RO, GB or US")
    return code


_PHONE = re.compile(r"\+?[0-9][0-9 ()./-]*")


def _phone(value: str) -> str:
    """A phone number as a collector dials it: digits, an optional leading +, and the usual separators
    (spaces, dots, dashes, slashes, brackets), 5 to 15 digits in all (E.164's longest is 15)."""
    number = " ".join(value.split())
    digits = sum(char.isdigit() for char in number)
    if not _PHONE.fullmatch(number) or not 5 <= digits <= 15:
        raise ValueError(
            f"'{value}' is not a phone number: digits with an optional leading +, such as +44 20 7946 0958"
        )
    return number


def _segment(value: str) -> str:
    name = value.strip().lower()
    if not _SEGMENT.match(name):
        raise ValueError("must be a short name of letters, digits, '-' or '_' (for example key_account)")
    return name


# Customer-supplied text is stored without bidi controls; stripped before the length checks, so a name made
# of nothing else is an empty one.
Text = Annotated[
    str, BeforeValidator(_without_bidi_controls), AfterValidator(_single_line), Field(max_length=500)
]
Identifier = Annotated[
    str,
    BeforeValidator(_without_bidi_controls),
    AfterValidator(_single_line),
    Field(min_length=1, max_length=200),
]
IsoDate = Annotated[date, BeforeValidator(_parse_iso_date)]
Amount = Annotated[Decimal, BeforeValidator(_parse_decimal)]
Currency = Annotated[str, AfterValidator(_currency)]
Emails = Annotated[tuple[str, ...], BeforeValidator(_emails)]
LocaleCode = Annotated[str, AfterValidator(_locale)]
TimeZoneName = Annotated[str, AfterValidator(_timezone)]
Country = Annotated[str, AfterValidator(_country)]
Segment = Annotated[str, AfterValidator(_segment)]
Phone = Annotated[str, BeforeValidator(_without_bidi_controls), AfterValidator(_phone)]


class CustomerType(StrEnum):
    BUSINESS = "business"
    CONSUMER = "consumer"


class InvoiceStatus(StrEnum):
    OPEN = "open"
    PAID = "paid"
    VOID = "void"
    # Only from accounting exports (Xero drafts): recorded, never chased.
    DRAFT = "draft"


class ActionKind(StrEnum):
    PROMISE = "promise"
    DISPUTE = "dispute"
    RESOLVE = "resolve"
    PAUSE = "pause"
    RESUME = "resume"
    # The customer asked not to be emailed (US Regulation F gives consumers that right); opt_in undoes it.
    OPT_OUT = "opt_out"
    OPT_IN = "opt_in"
    # A call a collector made (CONTRACT 9), with its `outcome`: it ends the account's call task.
    CALL = "call"
    # A payment plan agreed with the customer (CONTRACT 10): `instalments` YYYY-MM-DD=amount;...
    PLAN = "plan"
    # A notice waiting for approval (a stage's approve_above) is approved, or rejected: `task_id` names it.
    APPROVE = "approve"
    REJECT = "reject"
    # A letter to post (a `channel: letter` stage) was printed and posted: it ends the account's letter task,
    # or the one `task_id` names.
    POSTED = "posted"


class _Model(BaseModel):
    # defer_build: the rows of an upload are the ingest's alone; the other functions import this module but
    # never validate one, and would each build these validators at their cold start for nothing (issue 12).
    model_config = ConfigDict(frozen=True, extra="ignore", str_strip_whitespace=True, defer_build=True)


class AccountProfile(_Model):
    """Who the customer is and how to reach them; taken from the newest invoice row of the account."""

    account_id: Identifier
    customer_name: Text = Field(min_length=1)
    emails: Emails = Field(alias="customer_email")
    locale: LocaleCode
    timezone: TimeZoneName
    country: Country | None = None
    customer_type: CustomerType = CustomerType.BUSINESS
    segment: Segment = "default"
    # Where a collector calls the customer (CONTRACT 4.1 and 9: the worklist's phone column).
    phone: Phone | None = None
    # The debtor's postal address (CONTRACT 4.1), printed on letters and in the case packet. Stored on the
    # profile item as `address`: {line1, line2, city, region, postal_code}, only the parts given.
    address_line1: Text | None = None
    address_line2: Text | None = None
    city: Text | None = None
    region: Text | None = None
    postal_code: Text | None = None

    model_config = ConfigDict(populate_by_name=True)

    @property
    def address(self) -> dict[str, str]:
        """The postal address as the profile item stores it: the parts given, by ADDRESS_PARTS name."""
        values = (self.address_line1, self.address_line2, self.city, self.region, self.postal_code)
        return {part: value for part, value in zip(ADDRESS_PARTS, values, strict=True) if value}


# The parts of a stored postal address (the profile's `address`), in the order they are written.
ADDRESS_PARTS = ("line1", "line2", "city", "region", "postal_code")
# The AccountProfile fields that make up the address (stored together as `address`, not one by one).
ADDRESS_FIELDS = ("address_line1", "address_line2", "city", "region", "postal_code")


def postal_address_lines(profile: Mapping[str, Any]) -> tuple[str, ...]:
    """The postal address of a stored account profile as the lines of an envelope: line 1, line 2, then
    city, region and postal code on one line ("London SW1A 1AA"); empty when no address is known. A list
    of lines (as a future import may store) is taken as it is."""
    address = profile.get("address")
    if isinstance(address, Mapping):
        first = [str(address[part]).strip() for part in ADDRESS_PARTS[:2] if address.get(part)]
        town = " ".join(str(address[part]).strip() for part in ADDRESS_PARTS[2:] if address.get(part))
        return tuple(line for line in (*first, town) if line)
    if isinstance(address, list | tuple):
        return tuple(str(line).strip() for line in address if str(line).strip())
    return ()


# A country's usual time zone where CLDR lists several for it and the first is not where most people live
# (CLDR orders a country's zones by their BCP 47 ids: the US list starts with America/Adak).
_MAIN_ZONES = {
    "AR": "America/Argentina/Buenos_Aires",
    "AU": "Australia/Sydney",
    "BR": "America/Sao_Paulo",
    "CA": "America/Toronto",
    "CD": "Africa/Kinshasa",
    "CL": "America/Santiago",
    "CN": "Asia/Shanghai",
    "CY": "Asia/Nicosia",
    "EC": "America/Guayaquil",
    "ES": "Europe/Madrid",
    "FM": "Pacific/Pohnpei",
    "GL": "America/Nuuk",
    "ID": "Asia/Jakarta",
    "KI": "Pacific/Tarawa",
    "KZ": "Asia/Almaty",
    "MH": "Pacific/Majuro",
    "MN": "Asia/Ulaanbaatar",
    "MX": "America/Mexico_City",
    "MY": "Asia/Kuala_Lumpur",
    "NZ": "Pacific/Auckland",
    "PF": "Pacific/Tahiti",
    "PG": "Pacific/Port_Moresby",
    "PT": "Europe/Lisbon",
    "RU": "Europe/Moscow",
    "UA": "Europe/Kyiv",
    "US": "America/New_York",
    "UZ": "Asia/Tashkent",
}


def country_timezone(country: str | None) -> str | None:
    """The time zone of a country (ISO 3166-1 alpha-2): its only zone, or for a country with several the
    one where most of its people live (the capital's, as a rule; _MAIN_ZONES), else the first CLDR lists.
    None for a code CLDR knows no zone for (EU, a region code) or a zone this system's tz data lacks."""
    if not country:
        return None
    code = country.strip().upper()
    zones: list[str] = get_global("territory_zones").get(code, [])
    candidates = [_MAIN_ZONES[code]] if code in _MAIN_ZONES else []
    for name in (*candidates, *zones):
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            continue
        return name
    return None


class Invoice(_Model):
    account_id: Identifier
    invoice_id: Identifier
    currency: Currency
    amount: Amount
    amount_paid: Amount = Decimal(0)
    issued_on: IsoDate
    due_on: IsoDate
    status: InvoiceStatus = InvoiceStatus.OPEN
    reference: Text | None = None
    # Payment terms or contract reference, quoted in letters and the case packet (CONTRACT 4.1).
    terms: Text | None = None
    document: (
        Annotated[
            str, BeforeValidator(_without_bidi_controls), AfterValidator(_single_line), Field(max_length=300)
        ]
        | None
    ) = None

    @model_validator(mode="after")
    def _amounts_and_dates(self) -> Self:
        amount = _in_currency("amount", self.amount, self.currency)
        paid = _in_currency("amount_paid", self.amount_paid, self.currency)
        if amount <= 0:
            raise FieldProblem("amount", "must be more than zero")
        if paid < 0:
            raise FieldProblem("amount_paid", "cannot be negative")
        if self.due_on < self.issued_on:
            raise FieldProblem("due_on", f"{self.due_on} is before the issue date {self.issued_on}")
        return self.model_copy(update={"amount": amount, "amount_paid": paid})


class Payment(_Model):
    account_id: Identifier
    # Empty for a payment on account: allocated at ingest to the account's oldest open invoices (4.3).
    invoice_id: Identifier | None = None
    amount: Amount
    paid_on: IsoDate
    currency: Currency | None = None
    reference: Text | None = None

    @model_validator(mode="after")
    def _positive(self) -> Self:
        if self.amount <= 0:
            raise FieldProblem("amount", "must be more than zero")
        if self.currency is not None:
            return self.model_copy(update={"amount": _in_currency("amount", self.amount, self.currency)})
        return self


CallOutcome = Literal["reached", "no_answer", "voicemail", "wrong_number"]


class Action(_Model):
    account_id: Identifier
    action: ActionKind
    on: IsoDate
    until: IsoDate | None = None
    invoice_id: Identifier | None = None
    note: Text | None = None
    # A call's: reached, no_answer, voicemail or wrong_number.
    outcome: CallOutcome | None = None
    # A promise of part of the balance: the amount promised (none: the whole balance), in `currency` (none:
    # each currency the account owes in).
    amount: Amount | None = None
    currency: Currency | None = None
    # A plan's instalments, YYYY-MM-DD=amount;... (checked against the account's currency at ingest).
    instalments: Text | None = None
    # The task an approve or reject decides (the worklist's task_id); a call or posted may name the one it
    # ends.
    task_id: Identifier | None = None

    @model_validator(mode="after")
    def _agreement_columns(self) -> Self:
        if self.action is ActionKind.PLAN and not self.instalments:
            raise FieldProblem("instalments", "a plan needs its instalments: YYYY-MM-DD=amount;...")
        if self.instalments and self.action is not ActionKind.PLAN:
            raise FieldProblem("instalments", f"only a plan has instalments, not a {self.action.value}")
        if self.action in (ActionKind.APPROVE, ActionKind.REJECT) and self.task_id is None:
            raise FieldProblem("task_id", f"an {self.action.value} needs the task_id of the approval task")
        if self.amount is not None:
            if self.action is not ActionKind.PROMISE:
                raise FieldProblem("amount", f"only a promise has an amount, not a {self.action.value}")
            if self.amount <= 0:
                raise FieldProblem("amount", "must be more than zero")
        return self

    @model_validator(mode="after")
    def _required_per_kind(self) -> Self:
        if self.action is ActionKind.CALL and self.outcome is None:
            raise FieldProblem(
                "outcome", "a call needs its outcome: reached, no_answer, voicemail, wrong_number"
            )
        if self.outcome is not None and self.action is not ActionKind.CALL:
            raise FieldProblem("outcome", f"only a call has an outcome, not a {self.action.value}")
        if self.action is ActionKind.PROMISE and self.until is None:
            raise FieldProblem("until", "a promise needs the date the customer promised to pay by")
        if self.action in (ActionKind.DISPUTE, ActionKind.RESOLVE) and self.invoice_id is None:
            raise FieldProblem("invoice_id", f"a {self.action.value} needs the invoice it is about")
        if self.until is not None and self.until < self.on:
            raise FieldProblem("until", f"{self.until} is before the action date {self.on}")
        if self.amount is not None and self.currency is not None:
            return self.model_copy(update={"amount": _in_currency("amount", self.amount, self.currency)})
        return self


def _in_currency(field: str, amount: Decimal, currency: str) -> Decimal:
    try:
        return to_minor_units(amount, currency)
    except ValueError as exc:
        raise FieldProblem(field, str(exc)) from exc


# --- turning pydantic errors into bookkeeper words ---------------------------------------------------

_MESSAGES_BY_TYPE = {
    "missing": "is required but empty",
    "enum": "must be one of: {expected}",
    "string_too_long": "is too long (at most {max_length} characters)",
    "string_too_short": "is required but empty",
}


def problems_from(error: ValidationError, model: type[BaseModel]) -> list[Problem]:
    """One Problem per failed field, named by the field's column name (its alias where it has one)."""
    aliases = {name: (info.alias or name) for name, info in model.model_fields.items()}
    problems = []
    for detail in error.errors(include_url=False):
        context = detail.get("ctx") or {}
        original = context.get("error")
        if isinstance(original, FieldProblem):
            problems.append(Problem(original.field, original.message))
            continue
        field = str(detail["loc"][0]) if detail["loc"] else ""
        template = _MESSAGES_BY_TYPE.get(detail["type"])
        if template is not None:
            message = template.format(**{k: v for k, v in context.items() if isinstance(v, str | int)})
        elif isinstance(original, ValueError):
            message = str(original)
        else:
            message = detail["msg"]
        problems.append(Problem(aliases.get(field, field), message))
    return problems


# Cells starting with these are formulas to Excel, LibreOffice and Google Sheets.
_FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r", "\n")
_PLAIN_NUMBER = re.compile(r"-?[0-9]+(\.[0-9]+)?")


def safe_cell(value: object) -> str:
    """A cell value that a spreadsheet shows as text, never runs as a formula. A plain number ("-2.39") is
    left as it is: it is no formula, and an apostrophe would turn it into text."""
    text = "" if value is None else str(value)
    if text.startswith(_FORMULA_PREFIXES) and not _PLAIN_NUMBER.fullmatch(text):
        return "'" + text
    return text
