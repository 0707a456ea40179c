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
from dunning.notices.pdf import (
    _BODY_PT,
    _LABELS,
    _SMALL_PT,
    _Cell,
    _charge_text,
    _Document,
    _Format,
    _table,
)
from dunning.packets.case import (
    _CELL_CHARACTERS,
    _SUMMARY_LOCALE,
    STATEMENT,
    CaseFile,
    _charges_total,
    _clean,
    _text,
    _utc,
)
from dunning.packets.statement import StatementLine


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
