"""case_summary.pdf: parties, invoices, amounts, fees and interest, the total claimed, and the ladder as it
happened."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import UTC
from decimal import Decimal
from typing import Any

from dunning.domain.events import EventType
from dunning.domain.models import postal_address_lines
from dunning.domain.money import format_amount
from dunning.notices.pdf import Format, charge_text, labels_in
from dunning.notices.pdf_layout import BODY_PT, SMALL_PT, Cell, Document, draw_table
from dunning.packets.case import STATEMENT, SUMMARY_LOCALE, CaseFile, clean, plain, utc_stamp
from dunning.packets.statement import StatementLine

# Characters a summary table cell may hold for the full page width (a column gets its share): even in the
# widest letters a row stays shorter than a page.
_CELL_CHARACTERS = 1000


def summary_pdf(case: CaseFile, lines: Sequence[StatementLine]) -> bytes:
    fmt = Format(SUMMARY_LOCALE, "en")
    currency = case.currency
    handed_off = case.created_at.astimezone(UTC)
    pdf = Document(
        rtl=False,
        lang="en",
        created=handed_off.date(),
        title=f"Case summary {case.case_id}",
        author=case.business.name,
        footer=" · ".join(
            (clean(case.business.name), f"Case {clean(case.case_id)}", f"Account {clean(case.account_id)}")
        ),
    )
    pdf.add_page()
    pdf.letterhead(case.business)
    pdf.paragraph(f"Case summary {clean(case.case_id)}", size=15, bold=True)
    pdf.paragraph(f"Handed off {fmt.date(handed_off.date())} ({utc_stamp(case.created_at)})")
    pdf.gap(2)

    _section(pdf, "Parties")
    customer = case.customer
    creditor = ", ".join(clean(x) for x in (case.business.name, *case.business.address) if clean(x))
    parties = [
        ("Creditor", creditor),
        ("Creditor contact", plain(case.business.reply_to)),
        ("Debtor", plain(customer.get("customer_name"))),
        ("Postal address", plain(postal_address_lines(customer))),
        ("Account", plain(case.account_id)),
        ("Email", plain(customer.get("emails"))),
        ("Country", plain(customer.get("country"))),
        ("Customer type", plain(customer.get("customer_type"))),
        # What the debt rests on: each invoice's payment terms or contract reference, where the import had it.
        (
            "Payment terms",
            "; ".join(f"{clean(i.invoice_id)}: {plain(i.terms)}" for i in case.invoices if plain(i.terms)),
        ),
    ]
    _table_of(pdf, (35, 65), [[Cell(k), Cell(v)] for k, v in parties if v], headings=False)

    _section(pdf, "Invoices")
    _table_of(pdf, (30, 20, 20, 22, 22, 24), _invoice_rows(case, fmt), headings=True)
    others = [i for i in case.invoices if i.currency != currency]
    if others:
        pdf.paragraph(
            "Not part of this claim (other currency): "
            + ", ".join(f"{clean(i.invoice_id)} {fmt.money(i.outstanding, i.currency)}" for i in others),
            size=9,
        )

    _section(pdf, "Amounts paid")
    payments = [line for line in lines if line.kind == "payment"]
    if payments:
        rows = [[Cell("Date"), Cell("Invoice"), Cell("Payment"), Cell("Amount", "R")]]
        rows += [
            [Cell(p.on.isoformat()), Cell(clean(p.invoice_id)), Cell(p.description),
             Cell(fmt.money(p.credit, currency), "R")]
            for p in payments
        ]  # fmt: skip
        total_paid = sum((p.credit for p in payments), Decimal(0))
        rows.append(
            [
                Cell("Total paid", colspan=3, bold=True),
                Cell(fmt.money(total_paid, currency), "R", bold=True),
            ]
        )
        _table_of(pdf, (20, 22, 42, 16), rows, headings=True)
    else:
        pdf.paragraph("No payments received.")

    _section(pdf, "Fees and interest to the hand-off date")
    charges = case.total_charges
    if case.charges:
        labels = labels_in("en")
        rows = [[Cell("Charge"), Cell("Amount", "R")]]
        for charge in case.charges:
            note = "" if charge.currency == currency else " (other currency, not claimed)"
            rows.append(
                [
                    Cell(charge_text(charge, labels, fmt) + note),
                    Cell(fmt.money(charge.amount, charge.currency), "R"),
                ]
            )
        rows.append(
            [Cell("Total fees and interest", bold=True), Cell(fmt.money(charges, currency), "R", bold=True)]
        )
        _table_of(pdf, (75, 25), rows, headings=True)
    else:
        pdf.paragraph("No fees or interest claimed.")

    _section(pdf, "Total claimed")
    totals = [
        [Cell("Outstanding invoices"), Cell(fmt.money(case.amount_due, currency), "R")],
        [Cell("Fees and interest"), Cell(fmt.money(charges, currency), "R")],
        [
            Cell("Total claimed", bold=True),
            Cell(fmt.money(case.amount_due + charges, currency), "R", bold=True),
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
            Cell("Date (UTC)"),
            Cell("Channel"),
            Cell("To"),
            Cell("Stage"),
            Cell("Message id"),
            Cell("Result"),
        ]
        # Six columns: the small size keeps addresses and message ids from breaking into fragments.
        _table_of(pdf, (15, 10, 24, 14, 19, 18), [header, *timeline], headings=True, size=SMALL_PT)
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
            [[Cell("Date (UTC)"), Cell("Event"), Cell("Detail")], *agreements],
            headings=True,
        )
    else:
        pdf.paragraph("No promises to pay or disputes were recorded.")
    return bytes(pdf.output())


def _table_of(
    pdf: Document,
    widths: Sequence[float],
    rows: Sequence[Sequence[Cell]],
    *,
    headings: bool,
    size: float = BODY_PT,
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
    draw_table(pdf, widths, fitted, headings=headings)
    pdf.set_font(size=BODY_PT)


def _section(pdf: Document, title: str) -> None:
    pdf.gap(2)
    pdf.paragraph(title, size=12, bold=True)
    pdf.gap()


def _invoice_rows(case: CaseFile, fmt: Format) -> list[list[Cell]]:
    currency = case.currency
    rows = [[Cell("Invoice"), Cell("Issued"), Cell("Due"), Cell("Amount", "R"), Cell("Paid", "R"),
             Cell("Outstanding", "R")]]  # fmt: skip
    total = Decimal(0)
    for invoice in case.invoices:
        if invoice.currency != currency:
            continue
        name = clean(invoice.invoice_id)
        if reference := clean(invoice.reference or ""):
            name += f" ({reference})"
        paid = max(invoice.reported_paid, invoice.payments_total)
        total += invoice.outstanding
        rows.append([
            Cell(name), Cell(invoice.issued_on.isoformat()), Cell(invoice.due_on.isoformat()),
            Cell(fmt.money(invoice.amount, currency), "R"), Cell(fmt.money(paid, currency), "R"),
            Cell(fmt.money(invoice.outstanding, currency), "R"),
        ])  # fmt: skip
    rows.append([Cell("Outstanding", colspan=5, bold=True), Cell(fmt.money(total, currency), "R", bold=True)])
    return rows


def _at(event: Mapping[str, Any]) -> str:
    text = plain(event.get("at"))
    return text.replace("T", " ").removesuffix("Z")[:16] if text else ""


def _timeline(events: Iterable[Mapping[str, Any]]) -> list[list[Cell]]:
    """One row per notice sent or skipped; a delivery failure goes into its notice's result, or gets a row
    of its own when the notice is not in the log."""
    events = list(events)
    failures: dict[str, list[str]] = {}
    for event in events:
        if event.get("type") == EventType.DELIVERY_FAILED and event.get("message_id"):
            failures.setdefault(str(event["message_id"]), []).append(_failure(event))
    rows: list[list[Cell]] = []
    sent_ids: set[str] = set()
    for event in events:
        kind = event.get("type")
        if kind == EventType.NOTICE_SENT:
            message_id = str(event.get("message_id") or "")
            sent_ids.add(message_id)
            result = "; ".join(failures.get(message_id, [])) or "accepted by SES, no failure reported"
            rows.append(_row(event, plain(event.get("to")), plain(event.get("stage")), message_id, result))
        elif kind == EventType.NOTICE_UNCONFIRMED:
            result = "handed to SES, its answer was lost: sending unconfirmed (copy enclosed)"
            rows.append(_row(event, plain(event.get("to")), plain(event.get("stage")), "", result))
        elif kind == EventType.NOTICE_SKIPPED:
            rows.append(
                _row(event, "", plain(event.get("stage")), "", f"not sent: {plain(event.get('reason'))}")
            )
    for event in events:
        unmatched = str(event.get("message_id") or "") not in sent_ids
        if event.get("type") == EventType.DELIVERY_FAILED and unmatched:
            rows.append(
                _row(event, plain(event.get("address")), "", plain(event.get("message_id")), _failure(event))
            )
    return rows


def _failure(event: Mapping[str, Any]) -> str:
    parts = [plain(event.get(key)) for key in ("reason", "address", "detail")]
    return "delivery failed: " + ", ".join(part for part in parts if part)


def _row(event: Mapping[str, Any], to: str, stage: str, message_id: str, result: str) -> list[Cell]:
    return [
        Cell(_at(event)),
        Cell("email"),
        Cell(to),
        Cell(stage),
        Cell(clean(message_id)),
        Cell(result),
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
) -> list[list[Cell]]:
    rows: list[list[Cell]] = []
    for event in events:
        label = _AGREEMENTS.get(str(event.get("type")))
        if label is None:
            continue
        detail = []
        if event.get("until"):
            detail.append(f"until {plain(event['until'])}")
        if event.get("invoice_id"):
            detail.append(f"invoice {plain(event['invoice_id'])}")
        rows.append([Cell(_at(event)), Cell(label), Cell(", ".join(detail))])
    for dispute in disputes:
        facts = "; ".join(f"{plain(k)}: {plain(v)}" for k, v in dispute.items() if k != "at")
        rows.append([Cell(_at(dispute)), Cell("Dispute detail"), Cell(facts)])
    return rows
