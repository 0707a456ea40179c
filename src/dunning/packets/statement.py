"""statement_of_account.csv: every debit and credit of the case's currency with a running balance that ends at
the total claimed."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from dunning.domain.account import InvoiceState
from dunning.domain.models import safe_cell
from dunning.domain.money import format_amount
from dunning.notices.pdf import Format, charge_text, labels_in
from dunning.packets.case import STATEMENT_COLUMNS, SUMMARY_LOCALE, CaseFile


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


def statement_lines(case: CaseFile) -> list[StatementLine]:
    """The debits and credits of the case currency, in date order; ValueError unless they add up to
    amount_due plus the charges."""
    handed_off = case.as_of
    lines: list[StatementLine] = []
    for invoice in case.invoices:
        if invoice.currency != case.currency:
            continue  # not part of this claim: the summary lists it apart
        lines += _invoice_lines(invoice, handed_off)
    labels, fmt = labels_in("en"), Format(SUMMARY_LOCALE, "en")
    for charge in case.charges:
        if charge.currency == case.currency:
            description = charge_text(charge, labels, fmt)
            lines.append(
                StatementLine(
                    handed_off, charge.kind, charge.invoice_id or "", description, charge.amount, Decimal(0)
                )
            )
    order = {id(line): index for index, line in enumerate(lines)}
    lines.sort(key=lambda line: (line.on, _KIND_ORDER.get(line.kind, 3), line.invoice_id, order[id(line)]))
    balance = sum((line.debit - line.credit for line in lines), Decimal(0))
    expected = case.amount_due + case.total_charges
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
