"""The legal case packet (CONTRACT section 6): one ZIP that holds the whole file of a debt and proves itself.

Contents, every path listed with its SHA-256 and size in `manifest.json`:
- `README.txt`: what the packet is and how to check the hashes;
- `case_summary.pdf`: creditor and debtor, invoices, payments, fees and interest, the total claimed, the
  timeline of every notice and the promises and disputes;
- `statement_of_account.csv`: every debit and credit with a running balance that ends at the total claimed;
- `contact_log.jsonl`: the account's events (CONTRACT 5) as given, one per line;
- `invoices/<invoice id>/<file>`: the uploaded document, else `generated-copy.pdf` from the ledger;
- `notices/<eml>`: every notice exactly as SES received it;
- `policy.json`: the policy in force.

Deterministic, so a packet can be rebuilt and compared byte for byte: entries are written in sorted path
order with `manifest.json` last (it needs the other files' hashes, and writing it last lets every entry be
hashed while it is written, one at a time); every entry has the hand-off instant (UTC) as its timestamp,
mode 0644, Unix as the creating system, and deflate at level 6; no extra fields. The PDFs take fpdf2's
deterministic path (creation date fixed to the hand-off date, file id a hash of the content). The same
CaseFile gives the same bytes with the same zlib and fpdf2 versions.

The packet is written entry by entry into the caller's seekable stream (a SpooledTemporaryFile that goes
to S3 as a multipart upload): only one entry is generated at a time, and the notices and documents are
written from the caller's bytes without being copied.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
import zipfile
import zlib
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, BinaryIO

from dunning.domain.account import InvoiceState
from dunning.domain.charges import ChargeLine
from dunning.domain.events import EventType
from dunning.domain.models import postal_address_lines, safe_cell, strip_bidi_controls
from dunning.domain.money import format_amount
from dunning.notices.context import notice_invoice
from dunning.notices.pdf import (
    _BODY_PT,
    _LABELS,
    _SMALL_PT,
    _Cell,
    _charge_text,
    _Document,
    _Format,
    _table,
    invoice_copy_pdf,
)
from dunning.notices.pdf import (
    _clean as _clean_line,
)
from dunning.notices.render import Business

MANIFEST = "manifest.json"
README = "README.txt"
SUMMARY = "case_summary.pdf"
STATEMENT = "statement_of_account.csv"
CONTACT_LOG = "contact_log.jsonl"
POLICY = "policy.json"
STATEMENT_COLUMNS = ("date", "type", "invoice_id", "description", "debit", "credit", "balance", "currency")
FORMAT_VERSION = 1

_COMPRESS_LEVEL = 6
_FILE_MODE = 0o644 << 16
_UNIX = 3
# The summary is for the legal team, in English whatever the customer's language; en is formatted the
# British way by render (15 March 2027, €1,280.50).
_SUMMARY_LOCALE = "en"
_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9._@+=-]+")
_NAME_MAX = 120
# Characters a summary table cell may hold for the full page width (a column gets its share): even in the
# widest letters a row stays shorter than a page.
_CELL_CHARACTERS = 1000
_NAME_IN_COPY = 300


def _clean(text: str) -> str:
    """A field of the customer's or the log's on one clean line. Unlike a notice, the summary's own words
    never need a direction mark, so the LRM, RLM and Arabic letter mark go too: rows imported before ingest
    stripped bidi controls may still hold them."""
    return _clean_line(strip_bidi_controls(text))


@dataclass(frozen=True)
class CaseFile:
    """Everything a packet holds, gathered by the caller (the escalate function) from the ledger and S3."""

    case_id: str
    account_id: str
    created_at: datetime  # aware; the hand-off instant
    currency: str
    amount_due: Decimal  # outstanding principal at hand-off (the case currency's invoices)
    charges: tuple[ChargeLine, ...]  # fees and interest to the hand-off date
    customer: Mapping[str, Any]  # the account profile: customer_name, emails, country, customer_type...
    business: Business
    invoices: tuple[InvoiceState, ...]  # the invoices in the case
    events: tuple[Mapping[str, Any], ...]  # the account's contact log, CONTRACT 5 objects, in time order
    # (eml file name, the exact bytes SES received), send order. Any sequence: the hand-off passes one that
    # reads each notice from S3 only when it is written into the zip, so memory does not grow with them.
    notices: Sequence[tuple[str, bytes]]
    documents: Mapping[str, tuple[str, bytes]]  # invoice_id -> (uploaded file name, bytes)
    policy_json: str  # the policy in force, as JSON text
    disputes: tuple[Mapping[str, Any], ...] = ()  # optional extra detail for the summary
    # Interest that keeps running after the hand-off, per day (the claim states it; zero when none runs).
    daily_interest: Decimal = Decimal(0)
    # The day the claim is computed to (the customer's local date of the hand-off); None: created_at's UTC
    # date.
    claimed_on: date | None = None

    @property
    def as_of(self) -> date:
        return self.claimed_on or self.created_at.astimezone(UTC).date()


@dataclass(frozen=True)
class ManifestEntry:
    path: str
    sha256: str
    bytes: int


@dataclass(frozen=True)
class StatementLine:
    on: date
    kind: str  # invoice | payment | adjustment | a ChargeLine kind
    invoice_id: str
    description: str
    debit: Decimal
    credit: Decimal


# Lines of one day: the invoice before what was paid on it, charges last (they run on what is left).
_KIND_ORDER = {"invoice": 0, "payment": 1, "adjustment": 2}


# --- the packet -------------------------------------------------------------------------------------------


def write_packet(case: CaseFile, out: BinaryIO) -> dict[str, Any]:
    """Write the packet of `case` as a ZIP to `out` (seekable, left positioned at the end) and return the
    manifest. ValueError when the case contradicts itself (a naive created_at, or invoices and charges that
    do not add up to amount_due), because a packet that does not add up is worse than none."""
    if case.created_at.tzinfo is None:
        raise ValueError("created_at must be time-zone aware")
    lines = statement_lines(case)
    entries = _entries(case, lines)
    stamp = case.created_at.astimezone(UTC)
    date_time = (stamp.year, stamp.month, stamp.day, stamp.hour, stamp.minute, stamp.second)
    listed: list[ManifestEntry] = []
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=_COMPRESS_LEVEL) as zf:
        for path in sorted(entries):
            data = entries[path]()
            listed.append(ManifestEntry(path, hashlib.sha256(data).hexdigest(), len(data)))
            _write(zf, path, data, date_time)
            del data  # the next generated entry must not sit beside this one
        manifest = _manifest(case, listed)
        _write(zf, MANIFEST, _json_bytes(manifest), date_time)
    return manifest


def verify_packet(data: BinaryIO) -> list[str]:
    """The problems of a packet: [] when every file the manifest lists is there with its SHA-256 and size,
    and nothing else is in the zip."""
    try:
        zf = zipfile.ZipFile(data)
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        return [f"not a readable zip file: {exc}"]
    with zf:
        names = [info.filename for info in zf.infolist()]
        problems = [f"{name}: appears more than once in the zip" for name in _duplicates(names)]
        if MANIFEST not in names:
            return [*problems, f"{MANIFEST} is missing"]
        try:
            manifest = json.loads(zf.read(MANIFEST))
            files = manifest["files"]
            listed = {str(item["path"]): (str(item["sha256"]), int(item["bytes"])) for item in files}
        except (zipfile.BadZipFile, zlib.error, OSError, EOFError, ValueError, KeyError, TypeError) as exc:
            return [*problems, f"{MANIFEST} cannot be read: {exc!r}"]
        problems += [f"{path}: listed more than once in {MANIFEST}" for path in _duplicates(
            [str(item["path"]) for item in files]
        )]  # fmt: skip
        present = set(names)
        for path, (sha256, size) in sorted(listed.items()):
            if path not in present:
                problems.append(f"{path}: listed in {MANIFEST} but missing from the zip")
                continue
            problems += _check(zf, path, sha256, size)
        problems += [
            f"{name}: in the zip but not listed in {MANIFEST}"
            for name in sorted(present - set(listed) - {MANIFEST})
        ]
    return problems


def _check(zf: zipfile.ZipFile, path: str, sha256: str, size: int) -> list[str]:
    digest = hashlib.sha256()
    length = 0
    try:
        with zf.open(path) as stream:
            while chunk := stream.read(1024 * 1024):
                digest.update(chunk)
                length += len(chunk)
    except (zipfile.BadZipFile, zlib.error, OSError, EOFError) as exc:
        # A changed byte in the compressed data usually breaks the deflate stream or the CRC first.
        return [f"{path}: cannot be read, the zip entry is damaged ({exc})"]
    problems = []
    if length != size:
        problems.append(f"{path}: {length} bytes, the manifest says {size}")
    if digest.hexdigest() != sha256.lower():
        problems.append(f"{path}: SHA-256 {digest.hexdigest()} does not match the manifest's {sha256}")
    return problems


def _duplicates(names: Sequence[str]) -> list[str]:
    return sorted(name for name, count in Counter(names).items() if count > 1)


def _write(
    zf: zipfile.ZipFile, path: str, data: bytes, date_time: tuple[int, int, int, int, int, int]
) -> None:
    info = zipfile.ZipInfo(path, date_time=date_time)
    info.external_attr = _FILE_MODE
    info.create_system = _UNIX
    zf.writestr(info, data, compress_type=zipfile.ZIP_DEFLATED, compresslevel=_COMPRESS_LEVEL)


def _entries(case: CaseFile, lines: Sequence[StatementLine]) -> dict[str, Callable[[], bytes]]:
    """Every file but the manifest, by path; each generated only when it is written."""
    entries: dict[str, Callable[[], bytes]] = {
        README: lambda: _readme(case).encode(),
        SUMMARY: lambda: summary_pdf(case, lines),
        STATEMENT: lambda: statement_csv(case, lines),
        CONTACT_LOG: lambda: _contact_log(case.events),
        POLICY: lambda: case.policy_json.encode(),
    }
    for name, content in case.notices:
        entries[_unique(f"notices/{_safe_name(name, 'notice.eml')}", entries)] = _constant(content)
    for invoice in case.invoices:
        folder = f"invoices/{_safe_name(invoice.invoice_id, 'invoice')}"
        if invoice.invoice_id in case.documents:
            name, content = case.documents[invoice.invoice_id]
            entries[_unique(f"{folder}/{_safe_name(name, 'document.pdf')}", entries)] = _constant(content)
        else:
            entries[_unique(f"{folder}/generated-copy.pdf", entries)] = _copy_maker(case, invoice)
    return entries


def _constant(content: bytes) -> Callable[[], bytes]:
    return lambda: content


def _copy_maker(case: CaseFile, invoice: InvoiceState) -> Callable[[], bytes]:
    def make() -> bytes:
        return invoice_copy_pdf(
            business=case.business,
            # invoice_copy_pdf puts the name in a table cell, which fpdf2 refuses once it is taller than a
            # page: a pasted essay as the name must not stop the packet.
            customer_name=_text(case.customer.get("customer_name") or case.account_id)[:_NAME_IN_COPY],
            account_id=case.account_id,
            invoice=notice_invoice(invoice, case.created_at.astimezone(UTC).date()),
            amount=invoice.amount,
            issued_on=invoice.issued_on,
            locale=str(case.customer.get("locale") or _SUMMARY_LOCALE),
        )

    return make


def _safe_name(name: str, fallback: str) -> str:
    """One path segment that cannot climb out of its folder or surprise an unzip tool."""
    base = re.split(r"[/\\]", name)[-1]
    cleaned = _UNSAFE_NAME.sub("_", base).lstrip(".")[:_NAME_MAX]
    return cleaned or fallback


def _unique(path: str, taken: Mapping[str, object]) -> str:
    if path not in taken:
        return path
    stem, dot, extension = path.rpartition(".")
    if not dot or "/" in extension:
        stem, extension = path, ""
    number = 2
    while (candidate := f"{stem}-{number}{'.' + extension if extension else ''}") in taken:
        number += 1
    return candidate


def _manifest(case: CaseFile, files: Sequence[ManifestEntry]) -> dict[str, Any]:
    charges = _charges_total(case)
    return {
        "case_id": case.case_id,
        "account_id": case.account_id,
        "created_at": _utc(case.created_at),
        "amount_due": format_amount(case.amount_due, case.currency),
        "currency": case.currency,
        "charges": format_amount(charges, case.currency),
        "total_claimed": format_amount(case.amount_due + charges, case.currency),
        "interest_per_day": format_amount(case.daily_interest, case.currency),
        "format_version": FORMAT_VERSION,
        "files": [{"path": f.path, "sha256": f.sha256, "bytes": f.bytes} for f in sorted(files, key=_path)],
    }


def _path(entry: ManifestEntry) -> str:
    return entry.path


def _json_bytes(value: Any) -> bytes:
    return (json.dumps(value, indent=2, ensure_ascii=False) + "\n").encode()


def _utc(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _json_default(value: object) -> str:
    # Events are JSON already (CONTRACT 5); a Decimal or date from a caller is written as its exact text.
    if isinstance(value, date):  # datetime too
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON")


def _contact_log(events: Iterable[Mapping[str, Any]]) -> bytes:
    out = io.BytesIO()
    for event in events:
        text = json.dumps(dict(event), ensure_ascii=False, separators=(",", ":"), default=_json_default)
        # JSON leaves U+2028/U+2029 raw, and some line readers split on them: one event must stay one line.
        text = text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
        out.write(text.encode() + b"\n")
    return out.getvalue()


def _readme(case: CaseFile) -> str:
    return f"""Legal case packet {_clean(case.case_id)}
Account {_clean(case.account_id)}, handed off {_utc(case.created_at)}.

This packet holds the complete file of the debt as it stood at the hand-off:

  case_summary.pdf           creditor and debtor, invoices, payments, fees and interest, the total
                             claimed, the timeline of every notice, promises and disputes
  statement_of_account.csv   every debit and credit with a running balance (UTF-8, comma separated);
                             the last balance is the total claimed. Cells that a spreadsheet would run
                             as a formula are prefixed with an apostrophe.
  contact_log.jsonl          every event of the account, one JSON object per line, oldest first
  notices/                   every notice sent by email, byte for byte as handed to the mail service
                             (open a .eml file with any mail program)
  invoices/                  each invoice of the case: the uploaded document, or generated-copy.pdf
                             produced from the ledger where none was uploaded
  policy.json                the collection policy (stages, fees, interest) in force
  manifest.json              the case figures and the SHA-256 and size of every other file

How to check that nothing was changed: every file except manifest.json itself is listed in manifest.json
with its SHA-256. In the unzipped folder:

  jq -r '.files[] | "\\(.sha256)  \\(.path)"' manifest.json | sha256sum -c -

or, without jq:

  python3 -c "import json,hashlib; [print(f['path'], 'OK' if hashlib.sha256(open(f['path'],'rb').read())\\
.hexdigest() == f['sha256'] else 'CHANGED') for f in json.load(open('manifest.json'))['files']]"

Every line must say OK. `dunning cases download` performs the same check after downloading.
"""


# --- the statement of account -----------------------------------------------------------------------------


def _charges_total(case: CaseFile) -> Decimal:
    return sum((c.amount for c in case.charges if c.currency == case.currency), Decimal(0))


def statement_lines(case: CaseFile) -> list[StatementLine]:
    """The debits and credits of the case currency, in date order; ValueError unless they add up to
    amount_due plus the charges."""
    handed_off = case.as_of
    lines: list[StatementLine] = []
    for invoice in case.invoices:
        if invoice.currency != case.currency:
            continue  # not part of this claim: the summary lists it apart
        lines += _invoice_lines(invoice, handed_off)
    labels, fmt = _LABELS["en"], _Format(_SUMMARY_LOCALE, "en")
    for charge in case.charges:
        if charge.currency == case.currency:
            description = _charge_text(charge, labels, fmt)
            lines.append(
                StatementLine(
                    handed_off, charge.kind, charge.invoice_id or "", description, charge.amount, Decimal(0)
                )
            )
    order = {id(line): index for index, line in enumerate(lines)}
    lines.sort(key=lambda line: (line.on, _KIND_ORDER.get(line.kind, 3), line.invoice_id, order[id(line)]))
    balance = sum((line.debit - line.credit for line in lines), Decimal(0))
    expected = case.amount_due + _charges_total(case)
    if balance != expected:
        raise ValueError(
            f"the statement ends at {balance} {case.currency} but amount_due plus charges is {expected}: "
            "amount_due must be the outstanding total of the case's invoices in the case currency"
        )
    return lines


def _invoice_lines(invoice: InvoiceState, handed_off: date) -> list[StatementLine]:
    iid = invoice.invoice_id
    reference = f" (reference {invoice.reference})" if invoice.reference else ""
    lines = [
        StatementLine(
            invoice.issued_on, "invoice", iid, f"Invoice issued{reference}, due {invoice.due_on.isoformat()}",
            invoice.amount, Decimal(0),
        )
    ]  # fmt: skip
    feed = [(payment.paid_on, payment.amount) for payment in invoice.feed] or list(invoice.payments)
    for on, amount in invoice.reductions():
        if on is None:
            # What the accounting records report beyond the payments feed: paid or credited before the feed
            # began, on a date the ledger does not know (balances.py).
            lines.append(
                StatementLine(
                    invoice.issued_on, "payment", iid,
                    "Paid or credited before the payments feed (as reported by the accounting records; "
                    "date not known)",
                    Decimal(0), amount,
                )
            )  # fmt: skip
        elif paid := next(((day, whole) for day, whole in feed if day == on and whole >= amount), None):
            feed.remove(paid)
            text = "Payment received"
            if paid[1] > amount:
                whole = format_amount(paid[1], invoice.currency)
                text += f" (of {whole}; the rest is a credit on the account)"
            lines.append(StatementLine(on, "payment", iid, text, Decimal(0), amount))
        else:
            text = "Credit applied (a credit note, or money received beyond another invoice)"
            lines.append(StatementLine(on, "payment", iid, text, Decimal(0), amount))
    adjustment = invoice.amount - invoice.paid - invoice.outstanding
    if adjustment > 0:
        lines.append(
            StatementLine(
                handed_off, "adjustment", iid,
                f"Invoice {invoice.status} in the accounting records: nothing claimed on it", Decimal(0),
                adjustment,
            )
        )  # fmt: skip
    return lines


def statement_csv(case: CaseFile, lines: Sequence[StatementLine]) -> bytes:
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\r\n")
    writer.writerow(STATEMENT_COLUMNS)
    balance = Decimal(0)
    currency = case.currency
    for line in lines:
        balance += line.debit - line.credit
        writer.writerow(
            safe_cell(cell)
            for cell in (
                line.on.isoformat(),
                line.kind,
                line.invoice_id,
                line.description,
                format_amount(line.debit, currency) if line.debit else "",
                format_amount(line.credit, currency) if line.credit else "",
                format_amount(balance, currency),
                currency,
            )
        )
    return text.getvalue().encode()


# --- the case summary -------------------------------------------------------------------------------------


def _text(value: object) -> str:
    """Any value from the profile or the log as one clean line: hostile text stays text."""
    if value is None:
        return ""
    if isinstance(value, list | tuple | set | frozenset):
        return ", ".join(_text(item) for item in value)
    return _clean(str(value))


def summary_pdf(case: CaseFile, lines: Sequence[StatementLine]) -> bytes:
    fmt = _Format(_SUMMARY_LOCALE, "en")
    currency = case.currency
    handed_off = case.created_at.astimezone(UTC)
    pdf = _Document(
        rtl=False,
        lang="en",
        created=handed_off.date(),
        title=f"Case summary {case.case_id}",
        author=case.business.name,
        footer=" · ".join(
            (_clean(case.business.name), f"Case {_clean(case.case_id)}", f"Account {_clean(case.account_id)}")
        ),
    )
    pdf.add_page()
    pdf.letterhead(case.business)
    pdf.paragraph(f"Case summary {_clean(case.case_id)}", size=15, bold=True)
    pdf.paragraph(f"Handed off {fmt.date(handed_off.date())} ({_utc(case.created_at)})")
    pdf.gap(2)

    _section(pdf, "Parties")
    customer = case.customer
    creditor = ", ".join(_clean(x) for x in (case.business.name, *case.business.address) if _clean(x))
    parties = [
        ("Creditor", creditor),
        ("Creditor contact", _text(case.business.reply_to)),
        ("Debtor", _text(customer.get("customer_name"))),
        ("Postal address", _text(postal_address_lines(customer))),
        ("Account", _text(case.account_id)),
        ("Email", _text(customer.get("emails"))),
        ("Country", _text(customer.get("country"))),
        ("Customer type", _text(customer.get("customer_type"))),
        # What the debt rests on: each invoice's payment terms or contract reference, where the import had it.
        (
            "Payment terms",
            "; ".join(f"{_clean(i.invoice_id)}: {_text(i.terms)}" for i in case.invoices if _text(i.terms)),
        ),
    ]
    _table_of(pdf, (35, 65), [[_Cell(k), _Cell(v)] for k, v in parties if v], headings=False)

    _section(pdf, "Invoices")
    _table_of(pdf, (30, 20, 20, 22, 22, 24), _invoice_rows(case, fmt), headings=True)
    others = [i for i in case.invoices if i.currency != currency]
    if others:
        pdf.paragraph(
            "Not part of this claim (other currency): "
            + ", ".join(f"{_clean(i.invoice_id)} {fmt.money(i.outstanding, i.currency)}" for i in others),
            size=9,
        )

    _section(pdf, "Amounts paid")
    payments = [line for line in lines if line.kind == "payment"]
    if payments:
        rows = [[_Cell("Date"), _Cell("Invoice"), _Cell("Payment"), _Cell("Amount", "R")]]
        rows += [
            [_Cell(p.on.isoformat()), _Cell(_clean(p.invoice_id)), _Cell(p.description),
             _Cell(fmt.money(p.credit, currency), "R")]
            for p in payments
        ]  # fmt: skip
        total_paid = sum((p.credit for p in payments), Decimal(0))
        rows.append(
            [
                _Cell("Total paid", colspan=3, bold=True),
                _Cell(fmt.money(total_paid, currency), "R", bold=True),
            ]
        )
        _table_of(pdf, (20, 22, 42, 16), rows, headings=True)
    else:
        pdf.paragraph("No payments received.")

    _section(pdf, "Fees and interest to the hand-off date")
    charges = _charges_total(case)
    if case.charges:
        labels = _LABELS["en"]
        rows = [[_Cell("Charge"), _Cell("Amount", "R")]]
        for charge in case.charges:
            note = "" if charge.currency == currency else " (other currency, not claimed)"
            rows.append(
                [
                    _Cell(_charge_text(charge, labels, fmt) + note),
                    _Cell(fmt.money(charge.amount, charge.currency), "R"),
                ]
            )
        rows.append(
            [_Cell("Total fees and interest", bold=True), _Cell(fmt.money(charges, currency), "R", bold=True)]
        )
        _table_of(pdf, (75, 25), rows, headings=True)
    else:
        pdf.paragraph("No fees or interest claimed.")

    _section(pdf, "Total claimed")
    totals = [
        [_Cell("Outstanding invoices"), _Cell(fmt.money(case.amount_due, currency), "R")],
        [_Cell("Fees and interest"), _Cell(fmt.money(charges, currency), "R")],
        [
            _Cell("Total claimed", bold=True),
            _Cell(fmt.money(case.amount_due + charges, currency), "R", bold=True),
        ],
    ]
    _table_of(pdf, (75, 25), totals, headings=False)
    pdf.paragraph(
        f"Total claimed: {format_amount(case.amount_due + charges, currency)} {currency}, "
        f"the last balance of {STATEMENT}.",
        size=9,
    )
    if case.daily_interest > 0:
        pdf.paragraph(
            f"Interest continues to run after {case.as_of.isoformat()} at "
            f"{format_amount(case.daily_interest, currency)} {currency} per day until payment.",
            size=9,
        )

    _section(pdf, "Notices")
    timeline = _timeline(case.events)
    if timeline:
        header = [
            _Cell("Date (UTC)"),
            _Cell("Channel"),
            _Cell("To"),
            _Cell("Stage"),
            _Cell("Message id"),
            _Cell("Result"),
        ]
        # Six columns: the small size keeps addresses and message ids from breaking into fragments.
        _table_of(pdf, (15, 10, 24, 14, 19, 18), [header, *timeline], headings=True, size=_SMALL_PT)
    else:
        pdf.paragraph("No notices in the contact log.")
    pdf.paragraph(
        f"The notices themselves are in notices/, byte for byte as sent ({len(case.notices)} files).", size=9
    )

    _section(pdf, "Promises and disputes")
    agreements = _agreements(case.events, case.disputes)
    if agreements:
        _table_of(
            pdf,
            (22, 22, 56),
            [[_Cell("Date (UTC)"), _Cell("Event"), _Cell("Detail")], *agreements],
            headings=True,
        )
    else:
        pdf.paragraph("No promises to pay or disputes were recorded.")
    return bytes(pdf.output())


def _table_of(
    pdf: _Document,
    widths: Sequence[float],
    rows: Sequence[Sequence[_Cell]],
    *,
    headings: bool,
    size: float = _BODY_PT,
) -> None:
    """A table whose cells are cut short where needed: fpdf2 refuses a row taller than a page, and one
    pasted essay in a customer's field must not stop the packet (the full text is in the contact log)."""
    total = sum(widths)
    fitted = []
    for row in rows:
        cells, column = [], 0
        for cell in row:
            share = sum(widths[column : column + cell.colspan]) / total
            column += cell.colspan
            limit = max(int(share * _CELL_CHARACTERS), 20)
            cells.append(replace(cell, text=cell.text[: limit - 1] + "…") if len(cell.text) > limit else cell)
        fitted.append(cells)
    pdf.set_font(size=size)
    _table(pdf, widths, fitted, headings=headings)
    pdf.set_font(size=_BODY_PT)


def _section(pdf: _Document, title: str) -> None:
    pdf.gap(2)
    pdf.paragraph(title, size=12, bold=True)
    pdf.gap()


def _invoice_rows(case: CaseFile, fmt: _Format) -> list[list[_Cell]]:
    currency = case.currency
    rows = [[_Cell("Invoice"), _Cell("Issued"), _Cell("Due"), _Cell("Amount", "R"), _Cell("Paid", "R"),
             _Cell("Outstanding", "R")]]  # fmt: skip
    total = Decimal(0)
    for invoice in case.invoices:
        if invoice.currency != currency:
            continue
        name = _clean(invoice.invoice_id)
        if reference := _clean(invoice.reference or ""):
            name += f" ({reference})"
        paid = max(invoice.reported_paid, invoice.payments_total)
        total += invoice.outstanding
        rows.append([
            _Cell(name), _Cell(invoice.issued_on.isoformat()), _Cell(invoice.due_on.isoformat()),
            _Cell(fmt.money(invoice.amount, currency), "R"), _Cell(fmt.money(paid, currency), "R"),
            _Cell(fmt.money(invoice.outstanding, currency), "R"),
        ])  # fmt: skip
    rows.append(
        [_Cell("Outstanding", colspan=5, bold=True), _Cell(fmt.money(total, currency), "R", bold=True)]
    )
    return rows


def _at(event: Mapping[str, Any]) -> str:
    text = _text(event.get("at"))
    return text.replace("T", " ").removesuffix("Z")[:16] if text else ""


def _timeline(events: Iterable[Mapping[str, Any]]) -> list[list[_Cell]]:
    """One row per notice sent or skipped; a delivery failure goes into its notice's result, or gets a row
    of its own when the notice is not in the log."""
    events = list(events)
    failures: dict[str, list[str]] = {}
    for event in events:
        if event.get("type") == EventType.DELIVERY_FAILED and event.get("message_id"):
            failures.setdefault(str(event["message_id"]), []).append(_failure(event))
    rows: list[list[_Cell]] = []
    sent_ids: set[str] = set()
    for event in events:
        kind = event.get("type")
        if kind == EventType.NOTICE_SENT:
            message_id = str(event.get("message_id") or "")
            sent_ids.add(message_id)
            result = "; ".join(failures.get(message_id, [])) or "accepted by SES, no failure reported"
            rows.append(_row(event, _text(event.get("to")), _text(event.get("stage")), message_id, result))
        elif kind == EventType.NOTICE_UNCONFIRMED:
            result = "handed to SES, its answer was lost: sending unconfirmed (copy enclosed)"
            rows.append(_row(event, _text(event.get("to")), _text(event.get("stage")), "", result))
        elif kind == EventType.NOTICE_SKIPPED:
            rows.append(
                _row(event, "", _text(event.get("stage")), "", f"not sent: {_text(event.get('reason'))}")
            )
    for event in events:
        unmatched = str(event.get("message_id") or "") not in sent_ids
        if event.get("type") == EventType.DELIVERY_FAILED and unmatched:
            rows.append(
                _row(event, _text(event.get("address")), "", _text(event.get("message_id")), _failure(event))
            )
    return rows


def _failure(event: Mapping[str, Any]) -> str:
    parts = [_text(event.get(key)) for key in ("reason", "address", "detail")]
    return "delivery failed: " + ", ".join(part for part in parts if part)


def _row(event: Mapping[str, Any], to: str, stage: str, message_id: str, result: str) -> list[_Cell]:
    return [
        _Cell(_at(event)),
        _Cell("email"),
        _Cell(to),
        _Cell(stage),
        _Cell(_clean(message_id)),
        _Cell(result),
    ]


_AGREEMENTS = {
    EventType.PROMISE_RECORDED: "Promise to pay",
    EventType.PROMISE_KEPT: "Promise kept",
    EventType.PROMISE_BROKEN: "Promise broken",
    EventType.DISPUTE_OPENED: "Dispute opened",
    EventType.DISPUTE_RESOLVED: "Dispute resolved",
}


def _agreements(
    events: Iterable[Mapping[str, Any]], disputes: Iterable[Mapping[str, Any]]
) -> list[list[_Cell]]:
    rows: list[list[_Cell]] = []
    for event in events:
        label = _AGREEMENTS.get(str(event.get("type")))
        if label is None:
            continue
        detail = []
        if event.get("until"):
            detail.append(f"until {_text(event['until'])}")
        if event.get("invoice_id"):
            detail.append(f"invoice {_text(event['invoice_id'])}")
        rows.append([_Cell(_at(event)), _Cell(label), _Cell(", ".join(detail))])
    for dispute in disputes:
        facts = "; ".join(f"{_text(k)}: {_text(v)}" for k, v in dispute.items() if k != "at")
        rows.append([_Cell(_at(dispute)), _Cell("Dispute detail"), _Cell(facts)])
    return rows
