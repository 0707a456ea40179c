"""The upload formats (CONTRACT 4.1-4.4): header recognition and row-by-row validation.

Each parser turns CSV records into domain objects or Rejections; it never touches AWS. A Rejection names
the column as the source file spells it, so the reject report points the accountant at their own data.

Whatever a row holds, it becomes a row or Rejections, never an exception: a row the CSV reader could not
read, a cell that breaks a conversion (an amount of 40 digits overflows Decimal's context), or any other
failure converting one row is that row's rejection, and the next row is read as usual.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from functools import cache, partial
from typing import Annotated, Any, TypeVar

from babel import Locale
from pydantic import BaseModel, TypeAdapter, ValidationError

from dunning.domain.models import (
    ADDRESS_FIELDS,
    AccountProfile,
    Action,
    CustomerType,
    Identifier,
    Invoice,
    InvoiceStatus,
    Payment,
    Problem,
    country_timezone,
    problems_from,
)
from dunning.domain.money import is_currency, parse_decimal, to_minor_units
from dunning.domain.policy import Policy
from dunning.ingest.csvfile import REPLACEMENT_CHARACTER, Record, UnreadableFile, normalize_header

ModelT = TypeVar("ModelT", bound=BaseModel)
logger = logging.getLogger(__name__)

# SES takes at most 50 destinations per message: a notice to more could never be sent.
MAX_RECIPIENTS = 50
# Far beyond any invoice, and within what Decimal (28 digits) and DynamoDB (38) hold exactly.
MAX_AMOUNT_DIGITS = 15
_AMOUNT_SHAPE = re.compile(r"^-?(\d+)(\.\d+)?$")


@dataclass(frozen=True)
class Rejection:
    line: int
    field: str
    value: str
    error: str
    account_id: str = ""


@dataclass(frozen=True)
class InvoiceRow:
    line: int
    profile: AccountProfile
    invoice: Invoice

    @property
    def row_hash(self) -> str:
        """Identifies the imported content: an unchanged row re-uploaded hashes the same."""
        content = {
            "profile": self.profile.model_dump(mode="json"),
            "invoice": self.invoice.model_dump(mode="json"),
        }
        # The optional columns added later (address, phone, terms) count only when given, so a row uploaded
        # again unchanged still hashes as it did before they existed.
        for part, fields in (("profile", (*ADDRESS_FIELDS, "phone")), ("invoice", ("terms",))):
            for field in fields:
                if content[part].get(field) is None:
                    content[part].pop(field, None)
        return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()


@dataclass(frozen=True)
class PaymentRow:
    line: int
    payment: Payment
    # The payer's or bank's id for this payment: a later row with the same id corrects it.
    payment_id: str = ""


@dataclass(frozen=True)
class ReversalRow:
    """Undoes an earlier payment, named by its payment_id or else by what it was recorded with."""

    line: int
    account_id: str
    payment_id: str = ""
    payment: Payment | None = None


@dataclass(frozen=True)
class ActionRow:
    line: int
    action: Action


@dataclass(frozen=True)
class CreditNoteRow:
    """A sales credit note from an accounting export (Xero): `remaining` is what is not yet allocated
    there (zero once Paid, Voided, Deleted or still a draft), a credit for the account (balances.py)."""

    line: int
    account_id: str
    credit_note_id: str
    currency: str
    total: Decimal
    remaining: Decimal
    issued_on: date
    status: InvoiceStatus
    reference: str = ""

    @property
    def row_hash(self) -> str:
        content = [
            self.account_id,
            self.credit_note_id,
            self.currency,
            str(self.total),
            str(self.remaining),
            self.issued_on.isoformat(),
            self.status.value,
            self.reference,
        ]
        return hashlib.sha256(json.dumps(content).encode()).hexdigest()


@dataclass(frozen=True)
class Skipped:
    """A row that is valid but not for us (a Xero bill or a supplier's credit note)."""

    line: int
    reason: str


ParsedRow = InvoiceRow | CreditNoteRow | PaymentRow | ReversalRow | ActionRow | Rejection | Skipped


class Header:
    """The header row: which column holds which field, by normalized name."""

    def __init__(self, record: Record) -> None:
        self.names = [name.strip().lstrip("*").strip() for name in record.values]
        self.index: dict[str, int] = {}
        for position, name in enumerate(record.values):
            self.index.setdefault(normalize_header(name), position)
        if record.error:
            raise UnreadableFile(f"the header row cannot be read: {record.error}")
        if any("\x00" in name for name in self.names):
            raise UnreadableFile(
                "the header row holds NUL bytes: the file is UTF-16 (or not text at all), not UTF-8; "
                "save it as 'CSV UTF-8'"
            )
        if any(REPLACEMENT_CHARACTER in name for name in self.names):
            raise UnreadableFile("the header row is not UTF-8 text; save the file as 'CSV UTF-8'")

    def require(self, columns: tuple[str, ...], what: str) -> None:
        missing = [column for column in columns if normalize_header(column) not in self.index]
        if missing:
            raise UnreadableFile(f"this is not {what}: the header lacks the column(s) {', '.join(missing)}")

    def has(self, column: str) -> bool:
        return normalize_header(column) in self.index

    def values(self, record: Record, columns: tuple[str, ...]) -> dict[str, str]:
        """The named columns of `record`, stripped; missing trailing cells read as empty."""
        row = {}
        for column in columns:
            position = self.index.get(normalize_header(column))
            if position is not None and position < len(record.values):
                row[column] = record.values[position].strip()
        return row


def _unreadable(record: Record) -> Rejection:
    return Rejection(record.line, "", record.text, record.error)


def _shape_problems(header: Header, record: Record, row: Mapping[str, str]) -> list[Rejection]:
    if record.error:
        return [_unreadable(record)]
    if len(record.values) > len(header.names):
        return [
            Rejection(
                record.line,
                "",
                ",".join(record.values)[:200],
                f"has {len(record.values)} values but the header has {len(header.names)} columns "
                "(a comma inside a value must be quoted)",
            )
        ]
    problems = []
    for column, value in row.items():
        if REPLACEMENT_CHARACTER in value:
            problems.append(
                Rejection(
                    record.line,
                    column,
                    value,
                    "contains characters that are not UTF-8 text; save as 'CSV UTF-8'",
                )
            )
        elif "\x00" in value:
            problems.append(
                Rejection(
                    record.line,
                    column,
                    value.replace("\x00", "\\0"),
                    "contains a NUL byte: the file is damaged or not a text file here",
                )
            )
    return problems


def _amount_problems(line: int, raw: Mapping[str, str], columns: tuple[str, ...]) -> list[Rejection]:
    """Amounts too large to hold exactly; caught before the model, whose Decimal arithmetic would raise."""
    problems = []
    for column in columns:
        match = _AMOUNT_SHAPE.match(raw.get(column, "").strip())
        if match and len(match.group(1).lstrip("0")) > MAX_AMOUNT_DIGITS:
            problems.append(
                Rejection(
                    line,
                    column,
                    raw[column],
                    f"is too large (at most {MAX_AMOUNT_DIGITS} digits before the decimal point)",
                    raw.get("account_id", ""),
                )
            )
    return problems


def _each_record(
    header: Header,
    records: Iterator[Record],
    what: str,
    required: tuple[str, ...],
    optional: tuple[str, ...],
    parse: Callable[[Header, Record, dict[str, str]], list[ParsedRow]],
) -> Iterator[ParsedRow]:
    """The rows of a file in one of our formats (`what`): each record's values by column, its shape checked,
    then `parse`d."""
    header.require(required, what)
    for record in records:
        yield from _guarded(record, partial(_shaped, header, record, required + optional, parse))


def _shaped(
    header: Header,
    record: Record,
    columns: tuple[str, ...],
    parse: Callable[[Header, Record, dict[str, str]], list[ParsedRow]],
) -> list[ParsedRow]:
    raw = header.values(record, columns)
    shape = _shape_problems(header, record, raw)
    return list(shape) if shape else parse(header, record, raw)


def _guarded(record: Record, parse: Callable[[], list[ParsedRow]]) -> list[ParsedRow]:
    """`parse()` of one record, or that record's rejection if it raises anything at all."""
    try:
        return parse()
    except UnreadableFile:
        raise
    except Exception as exc:
        # An unforeseen cell is one row's problem; the traceback is for us, not for the accountant.
        logger.warning("A row could not be converted", exc_info=True, extra={"line": record.line})
        return [_unconvertible(record, exc)]


def _unconvertible(record: Record, exc: Exception) -> Rejection:
    return Rejection(
        record.line,
        "",
        ",".join(record.values)[:200],
        f"this row could not be read ({type(exc).__name__}); check its values",
    )


def _validate(
    model: type[ModelT],
    data: Mapping[str, Any],
    line: int,
    raw: Mapping[str, str],
    column_for: Callable[[str], str] = lambda field: field,
) -> ModelT | list[Rejection]:
    present = {key: value for key, value in data.items() if value not in ("", None)}
    account = str(data.get("account_id") or "")
    try:
        return model.model_validate(present)
    except ValidationError as exc:
        return [_rejection(problem, line, raw, column_for, account) for problem in problems_from(exc, model)]
    except Exception as exc:
        # Not a validation message but a conversion that broke: find the cell that breaks it, to name it.
        field = _breaking_field(model, present)
        column = column_for(field) if field else ""
        logger.warning("A cell broke a conversion", exc_info=True, extra={"line": line, "field": field})
        return [
            Rejection(
                line,
                column,
                raw.get(column, "") if column else "",
                f"cannot be read ({type(exc).__name__}); check this value",
                account,
            )
        ]


_FIELD_ADAPTERS: dict[tuple[type[BaseModel], str], TypeAdapter[Any]] = {}


def _breaking_field(model: type[BaseModel], data: Mapping[str, Any]) -> str:
    """The first field whose value alone makes its own conversion raise something else than a
    validation error; "" when no single field does (the failure is in a cross-field check)."""
    by_alias = {(info.alias or name): (name, info) for name, info in model.model_fields.items()}
    for key, value in data.items():
        if key not in by_alias:
            continue
        name, info = by_alias[key]
        adapter = _FIELD_ADAPTERS.get((model, name))
        if adapter is None:
            annotation: Any = info.annotation
            for extra in info.metadata:
                annotation = Annotated[annotation, extra]
            adapter = _FIELD_ADAPTERS.setdefault((model, name), TypeAdapter(annotation))
        try:
            adapter.validate_python(value)
        except ValidationError:
            continue
        except Exception:
            return key
    return ""


def _rejection(
    problem: Problem, line: int, raw: Mapping[str, str], column_for: Callable[[str], str], account_id: str
) -> Rejection:
    column = column_for(problem.field)
    return Rejection(line, column, raw.get(column, ""), problem.message, account_id)


# --- our invoice format (4.1) ------------------------------------------------------------------------

INVOICE_REQUIRED = (
    "invoice_id",
    "account_id",
    "customer_name",
    "customer_email",
    "currency",
    "amount",
    "issued_on",
    "due_on",
)
INVOICE_OPTIONAL = (
    "amount_paid",
    "status",
    "locale",
    "timezone",
    "country",
    "customer_type",
    "segment",
    "reference",
    "document",
    # Where a collector calls the customer (the worklist).
    "phone",
    # The debtor's postal address and the invoice's payment terms, for letters and the case packet.
    "address_line1",
    "address_line2",
    "city",
    "region",
    "postal_code",
    "terms",
)
_PUBLIC_STATUSES = {"open", "paid", "void"}


def _invoice_row(
    line: int, row: dict[str, Any], raw: Mapping[str, str], column_for: Callable[[str], str], policy: Policy
) -> InvoiceRow | list[Rejection]:
    row["locale"] = row.get("locale") or policy.default_locale
    row["timezone"] = row.get("timezone") or _default_timezone(row, policy)
    too_large = _amount_problems(line, raw, tuple(column_for(field) for field in ("amount", "amount_paid")))
    if too_large:
        return too_large
    profile = _validate(AccountProfile, row, line, raw, column_for)
    invoice = _validate(Invoice, row, line, raw, column_for)
    problems = (profile if isinstance(profile, list) else []) + (invoice if isinstance(invoice, list) else [])
    if isinstance(profile, AccountProfile) and len(profile.emails) > MAX_RECIPIENTS:
        column = column_for("customer_email")
        problems.append(
            Rejection(
                line,
                column,
                raw.get(column, ""),
                f"has {len(profile.emails)} addresses; SES sends a message to at most {MAX_RECIPIENTS} "
                "recipients, so no notice could ever be sent to this account",
                profile.account_id,
            )
        )
    if problems:
        return problems
    assert isinstance(profile, AccountProfile) and isinstance(invoice, Invoice)
    return InvoiceRow(line, profile, invoice)


def _default_timezone(row: Mapping[str, Any], policy: Policy) -> str:
    """The time zone of a row without one: a consumer's is their country's (the sending window is about
    their evening and morning, CONTRACT 7), a business's the policy's default, as before."""
    consumer = str(row.get("customer_type") or "").strip().lower() == CustomerType.CONSUMER.value
    zone = country_timezone(str(row.get("country") or "")) if consumer else None
    return zone or policy.customer_timezone_default


def parse_invoices(header: Header, records: Iterator[Record], policy: Policy) -> Iterator[ParsedRow]:
    parse = partial(_invoice_record, policy=policy)
    return _each_record(header, records, "an invoice file", INVOICE_REQUIRED, INVOICE_OPTIONAL, parse)


def _invoice_record(header: Header, record: Record, raw: dict[str, str], policy: Policy) -> list[ParsedRow]:
    status = raw.get("status", "").lower()
    if status and status not in _PUBLIC_STATUSES:
        return [
            Rejection(
                record.line,
                "status",
                raw["status"],
                "must be one of: open, paid, void",
                raw.get("account_id", ""),
            )
        ]
    parsed = _invoice_row(record.line, dict(raw, status=status), raw, lambda field: field, policy)
    return list(parsed) if isinstance(parsed, list) else [parsed]


# --- Xero invoice export (4.2) -----------------------------------------------------------------------

XERO_REQUIRED = ("ContactName", "InvoiceNumber", "InvoiceDate", "DueDate", "Total", "Currency")
XERO_OPTIONAL = (
    "EmailAddress",
    "Reference",
    "InvoiceAmountPaid",
    "InvoiceAmountDue",
    "Type",
    "Status",
    "POCountry",
)
# Our field -> the Xero column it comes from (for naming the column in the reject report).
XERO_COLUMN_FOR = {
    "account_id": "ContactName",
    "customer_name": "ContactName",
    "customer_email": "EmailAddress",
    "invoice_id": "InvoiceNumber",
    "reference": "Reference",
    "issued_on": "InvoiceDate",
    "due_on": "DueDate",
    "amount": "Total",
    "amount_paid": "InvoiceAmountPaid",
    "currency": "Currency",
    "status": "Status",
    "country": "POCountry",
}
# Columns repeated on every line item that must agree within one invoice.
XERO_INVOICE_LEVEL = (
    "ContactName",
    "InvoiceDate",
    "DueDate",
    "Total",
    "Currency",
    "Status",
    "InvoiceAmountPaid",
    "InvoiceAmountDue",
)
_XERO_STATUS = {
    "authorised": InvoiceStatus.OPEN,
    "awaitingpayment": InvoiceStatus.OPEN,
    "paid": InvoiceStatus.PAID,
    "voided": InvoiceStatus.VOID,
    "deleted": InvoiceStatus.VOID,
    "draft": InvoiceStatus.DRAFT,
    "submitted": InvoiceStatus.DRAFT,
    "awaitingapproval": InvoiceStatus.DRAFT,
}
_SALES_TYPES = {"", "accrec", "salesinvoice", "sales"}
# A sales credit note (Xero's API says ACCRECCREDIT, its export "Sales credit note"); its amounts may be
# written negative. A negative Total on an invoice row stays an error (an invoice's amount is > 0).
_CREDIT_NOTE_TYPES = {"accreccredit", "salescreditnote", "salescredit", "creditnote"}
_XERO_DATE = re.compile(r"^(\d{1,2})/(\d{1,2})/(\d{4})$")


@cache
def _country_by_name() -> dict[str, str]:
    # On first use: Babel's territory names load the whole "en" locale data, which only a Xero export with
    # country names needs, not every upload (the ingest's cold start, issue 12).
    return {name.casefold(): code for code, name in Locale("en").territories.items() if len(code) == 2}


def is_xero_header(header: Header) -> bool:
    return header.has("ContactName") and header.has("InvoiceNumber")


def xero_date(text: str, day_first: bool) -> date:
    match = _XERO_DATE.match(text.strip())
    layout = "DD/MM/YYYY" if day_first else "MM/DD/YYYY"
    if not match:
        raise ValueError(f"'{text}' is not a date written {layout}")
    first, second, year = (int(part) for part in match.groups())
    day, month = (first, second) if day_first else (second, first)
    try:
        return date(year, month, day)
    except ValueError as exc:
        raise ValueError(f"'{text}' is not a real calendar date (read as {layout})") from exc


def _xero_country(text: str) -> str | None:
    cleaned = text.strip()
    if len(cleaned) == 2 and cleaned.isalpha():
        return cleaned.upper()
    return _country_by_name().get(cleaned.casefold())


def _xero_invoice(line: int, raw: Mapping[str, str], policy: Policy) -> InvoiceRow | list[Rejection]:
    contact = raw.get("ContactName", "")
    problems: list[Rejection] = []
    dates: dict[str, str] = {}
    for field, column in (("issued_on", "InvoiceDate"), ("due_on", "DueDate")):
        try:
            dates[field] = xero_date(
                raw.get(column, ""), policy.imports.xero_date_format == "DD/MM/YYYY"
            ).isoformat()
        except ValueError as exc:
            problems.append(Rejection(line, column, raw.get(column, ""), str(exc), contact))
    status_text = normalize_header(raw.get("Status", "")) or "authorised"
    status = _XERO_STATUS.get(status_text)
    if status is None:
        problems.append(
            Rejection(line, "Status", raw.get("Status", ""), "is not a Xero invoice status", contact)
        )
    if problems:
        return problems
    assert status is not None
    paid = _xero_paid_or_credited(line, raw)
    if isinstance(paid, Rejection):
        return [paid]
    paid_text, paid_column = paid
    row: dict[str, Any] = {
        "account_id": contact,
        "customer_name": contact,
        "customer_email": raw.get("EmailAddress", ""),
        "invoice_id": raw.get("InvoiceNumber", ""),
        "reference": raw.get("Reference", ""),
        "amount": raw.get("Total", ""),
        "amount_paid": paid_text,
        "currency": raw.get("Currency", ""),
        "status": status.value,
        "country": _xero_country(raw.get("POCountry", "")),
        **dates,
    }
    columns = {**XERO_COLUMN_FOR, "amount_paid": paid_column}
    return _invoice_row(line, row, raw, lambda field: columns.get(field, field), policy)


def _xero_paid_or_credited(line: int, raw: Mapping[str, str]) -> tuple[str, str] | Rejection:
    """(amount_paid, the column it comes from): Total - InvoiceAmountDue when the export has it (Xero's
    due amount is authoritative: it also counts the credit notes allocated in Xero), else
    InvoiceAmountPaid. A Total that is not a number is left for the amount's own check."""
    due_text = raw.get("InvoiceAmountDue", "")
    if not due_text:
        return raw.get("InvoiceAmountPaid", "") or "0", "InvoiceAmountPaid"
    contact = raw.get("ContactName", "")
    try:
        due = parse_decimal(due_text)
    except ValueError as exc:
        return Rejection(line, "InvoiceAmountDue", due_text, str(exc), contact)
    try:
        total = parse_decimal(raw.get("Total", ""))
    except ValueError:
        return raw.get("InvoiceAmountPaid", "") or "0", "InvoiceAmountPaid"
    if not 0 <= due <= total:
        return Rejection(
            line,
            "InvoiceAmountDue",
            due_text,
            f"must be between 0 and the invoice's Total ({total})",
            contact,
        )
    return str(total - due), "InvoiceAmountDue"


def _xero_kind(raw: Mapping[str, str]) -> str | None:
    """'invoice' or 'credit_note' for a sales row; None for anything else (bills, supplier credits)."""
    kind = normalize_header(raw.get("Type", ""))
    if kind in _CREDIT_NOTE_TYPES:
        return "credit_note"
    return "invoice" if kind in _SALES_TYPES else None


def _xero_credit_note(line: int, raw: Mapping[str, str], policy: Policy) -> CreditNoteRow | list[Rejection]:
    """A sales credit note. Amounts may be written negative; the remainder to allocate is
    InvoiceAmountDue (else Total - InvoiceAmountPaid), nothing once Paid, Voided, Deleted or a draft."""
    contact = raw.get("ContactName", "")
    problems: list[Rejection] = []

    def problem(column: str, error: str) -> None:
        problems.append(Rejection(line, column, raw.get(column, ""), error, contact))

    for column in ("ContactName", "InvoiceNumber"):
        try:
            _IDENTIFIER.validate_python(raw.get(column, ""))
        except ValidationError as exc:
            problem(column, problems_from(exc, Invoice)[0].message)
    issued = None
    try:
        issued = xero_date(raw.get("InvoiceDate", ""), policy.imports.xero_date_format == "DD/MM/YYYY")
    except ValueError as exc:
        problem("InvoiceDate", str(exc))
    currency = raw.get("Currency", "").strip().upper()
    if not is_currency(currency):
        problem("Currency", f"'{raw.get('Currency', '')}' is not an ISO 4217 currency code")
    status = _XERO_STATUS.get(normalize_header(raw.get("Status", "")) or "authorised")
    if status is None:
        problem("Status", "is not a Xero credit note status")
    amounts = _credit_note_amounts(raw, currency, problem)
    if problems:
        return problems
    assert issued is not None and status is not None
    total = amounts["Total"]
    if status is not InvoiceStatus.OPEN:
        remaining = Decimal(0)
    elif "InvoiceAmountDue" in amounts:
        remaining = amounts["InvoiceAmountDue"]
    else:
        remaining = total - amounts.get("InvoiceAmountPaid", Decimal(0))
    if not 0 <= remaining <= total:
        column = "InvoiceAmountDue" if "InvoiceAmountDue" in amounts else "InvoiceAmountPaid"
        problem(column, f"leaves a remaining credit outside 0 to the credit note's Total ({total})")
        return problems
    reference = raw.get("Reference", "")
    return CreditNoteRow(
        line, contact, raw.get("InvoiceNumber", ""), currency, total, remaining, issued, status, reference
    )


def _credit_note_amounts(
    raw: Mapping[str, str], currency: str, problem: Callable[[str, str], None]
) -> dict[str, Decimal]:
    """The credit note's amounts as positive numbers at the currency's precision (Total is required)."""
    amounts: dict[str, Decimal] = {}
    for column in ("Total", "InvoiceAmountPaid", "InvoiceAmountDue"):
        text = raw.get(column, "")
        if not text and column != "Total":
            continue
        try:
            amount = abs(parse_decimal(text))
            amounts[column] = to_minor_units(amount, currency) if is_currency(currency) else amount
        except ValueError as exc:
            problem(column, str(exc))
    return amounts


def parse_xero(header: Header, records: Iterator[Record], policy: Policy) -> Iterator[ParsedRow]:
    """One invoice per run of adjacent rows with the same InvoiceNumber (one row per line item)."""
    header.require(XERO_REQUIRED, "a Xero invoice export")
    columns = XERO_REQUIRED + XERO_OPTIONAL
    group: list[tuple[Record, dict[str, str]]] = []
    for record in records:
        if record.error:
            # Not a line of any invoice we can tell: reported alone, and the group it interrupts goes on.
            yield _unreadable(record)
            continue
        raw = header.values(record, columns)
        if group and raw.get("InvoiceNumber") != group[0][1].get("InvoiceNumber"):
            yield from _xero_group(header, group, policy)
            group = []
        group.append((record, raw))
    if group:
        yield from _xero_group(header, group, policy)


def _xero_group(
    header: Header, group: list[tuple[Record, dict[str, str]]], policy: Policy
) -> list[ParsedRow]:
    try:
        return list(_xero_group_rows(header, group, policy))
    except Exception as exc:
        logger.warning("A Xero invoice could not be converted", exc_info=True)
        return [_unconvertible(record, exc) for record, _ in group]


def _xero_group_rows(
    header: Header, group: list[tuple[Record, dict[str, str]]], policy: Policy
) -> Iterator[ParsedRow]:
    first_record, first = group[0]
    contact = first.get("ContactName", "")
    kind = _xero_kind(first)
    if kind is None:
        for record, _ in group:
            yield Skipped(record.line, f"Type {first.get('Type')} is not a sales invoice or credit note")
        return
    problems: list[Rejection] = []
    for record, raw in group:
        problems.extend(_shape_problems(header, record, raw))
        for column in XERO_INVOICE_LEVEL:
            if raw.get(column, "") != first.get(column, ""):
                problems.append(
                    Rejection(
                        record.line,
                        column,
                        raw.get(column, ""),
                        f"differs from line {first_record.line} of the same invoice "
                        f"{first.get('InvoiceNumber')} ('{first.get(column, '')}'); "
                        "every line of an invoice must agree",
                        contact,
                    )
                )
    if not problems:
        parsed: ParsedRow | list[Rejection]
        if kind == "credit_note":
            parsed = _xero_credit_note(first_record.line, first, policy)
        else:
            parsed = _xero_invoice(first_record.line, first, policy)
        if not isinstance(parsed, list):
            yield parsed
            return
        problems = parsed
    yield from problems
    rejected_lines = {problem.line for problem in problems}
    for record, _ in group:
        if record.line not in rejected_lines:
            yield Rejection(
                record.line,
                "InvoiceNumber",
                first.get("InvoiceNumber", ""),
                f"line item of invoice {first.get('InvoiceNumber')}, which was rejected (see line "
                f"{min(rejected_lines)})",
                contact,
            )


# --- payments (4.3) and actions (4.4) ----------------------------------------------------------------

PAYMENT_REQUIRED = ("account_id", "invoice_id", "amount", "paid_on")
PAYMENT_OPTIONAL = ("currency", "reference", "payment_id", "type")
PAYMENT_TYPES = ("payment", "reversal")
ACTION_REQUIRED = ("account_id", "action", "on")
ACTION_OPTIONAL = ("until", "invoice_id", "note", "outcome", "amount", "currency", "instalments", "task_id")
_IDENTIFIER: TypeAdapter[str] = TypeAdapter(Identifier)


def parse_payments(header: Header, records: Iterator[Record]) -> Iterator[ParsedRow]:
    """Payments, corrections (a payment_id seen before) and reversals (`type` reversal).

    A reversal names the payment it undoes by its payment_id (the other cells may then be empty), or else
    by the account_id, invoice_id, amount, paid_on and reference the payment was recorded with; its amount
    may be written with or without a minus sign."""
    return _each_record(
        header, records, "a payments file", PAYMENT_REQUIRED, PAYMENT_OPTIONAL, _payment_record
    )


def _payment_record(header: Header, record: Record, raw: dict[str, str]) -> list[ParsedRow]:
    account = raw.get("account_id", "")
    kind = raw.get("type", "").lower() or "payment"
    if kind not in PAYMENT_TYPES:
        return [
            Rejection(record.line, "type", raw["type"], "must be payment (or empty) or reversal", account)
        ]
    payment_id = raw.get("payment_id", "")
    problems = _amount_problems(record.line, raw, ("amount",))
    problems += _identifier_problems(record.line, raw, ("payment_id",))
    if kind == "reversal" and payment_id:
        # By its id, a reversal needs nothing else to find the payment.
        problems += _identifier_problems(record.line, raw, ("account_id",), required=True)
        return list(problems) or [ReversalRow(record.line, account, payment_id)]
    if "invoice_id" not in raw:
        # The row ends before its invoice_id cell (a cut line): an empty cell means a payment on account,
        # a missing one is damage, not a choice.
        problems.append(
            Rejection(
                record.line,
                "invoice_id",
                "",
                f"the row ends before the invoice_id column ({len(record.values)} of "
                f"{len(header.names)} values); for a payment on account leave the invoice_id cell empty",
                account,
            )
        )
    if kind == "reversal":
        raw = dict(raw, amount=raw.get("amount", "").removeprefix("-"))
    elif raw.get("amount", "").startswith("-"):
        problems.append(
            Rejection(
                record.line,
                "amount",
                raw["amount"],
                "must be more than zero; to undo a payment, add a row with type reversal",
                account,
            )
        )
    if problems:
        return list(problems)
    parsed = _validate(Payment, raw, record.line, raw)
    if isinstance(parsed, list):
        return list(parsed)
    if kind == "reversal":
        return [ReversalRow(record.line, parsed.account_id, payment=parsed)]
    return [PaymentRow(record.line, parsed, payment_id)]


def _identifier_problems(
    line: int, raw: Mapping[str, str], columns: tuple[str, ...], *, required: bool = False
) -> list[Rejection]:
    problems = []
    for column in columns:
        value = raw.get(column, "")
        if not value and not required:
            continue
        try:
            _IDENTIFIER.validate_python(value)
        except ValidationError as exc:
            message = problems_from(exc, Payment)[0].message
            problems.append(Rejection(line, column, value, message, raw.get("account_id", "")))
    return problems


def parse_actions(header: Header, records: Iterator[Record]) -> Iterator[ParsedRow]:
    return _each_record(header, records, "an actions file", ACTION_REQUIRED, ACTION_OPTIONAL, _action_record)


def _action_record(header: Header, record: Record, raw: dict[str, str]) -> list[ParsedRow]:
    parsed = _validate(Action, dict(raw, action=raw.get("action", "").lower()), record.line, raw)
    return list(parsed) if isinstance(parsed, list) else [ActionRow(record.line, parsed)]
