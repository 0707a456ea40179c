"""PDF letters: the demand letter / final notice attached to those notices, and a one-page invoice copy for
an invoice that has no uploaded document; and the words and figures every PDF of dunning adds (the labels,
the charge descriptions), which the legal case packet reuses.

The page, fonts, right-to-left shaping and tables are pdf_layout.py's. The letter's words are the notice's
text template rendered in letter mode (RenderedNotice.letter_text, split by letter_text.py): without the
email's heading and signature, with the invoice table (charges, totals, the payment deadline) where the
template's invoice and charges lists are; besides:
- the payment instructions and link are added after the table unless the letter already gives them;
- the addressee's postal address (NoticeContext.postal_address) is printed under their name; each invoice's
  payment terms are in the table, with its total and what was paid when the total is known;
- a Letter of Claim's English annex (the Pre-Action Protocol's Information Sheet and Reply Form) starts
  on a new page.

The labels the PDF adds (table headings, totals, "How to pay", the charge names, a number of days) are in the
text's language, from the same gettext catalog as the email's words (catalog.py: en, ro, ru, hu, ar, fa;
English otherwise), so that a letter names a charge as its email does. Amounts, dates and rates are formatted
by render's own functions, so the table says exactly what the text says: the locale's conventions, the
currency's ISO 4217 minor units, Decimal throughout. The business logo is not drawn: it is a URL, and a letter
is built without network access.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from dunning.notices import catalog
from dunning.notices.letter_text import letter_text
from dunning.notices.pdf_layout import (
    GREY,
    LINE_MM,
    Cell,
    Document,
    clean_line,
    draw_table,
    https_link,
)
from dunning.notices.render import (
    FALLBACK_LANGUAGE,
    PAP_ANNEX_HEADING,
    RTL_LANGUAGES,
    Business,
    ChargeLine,
    NoticeContext,
    NoticeInvoice,
    RenderedNotice,
    format_locale,
    format_long_date,
    format_money,
    format_number,
    format_rate,
    language_of,
)


@dataclass(frozen=True)
class Labels:
    """The words the PDF adds around the notice text, in one language: from the language's catalog
    (catalog.py), the same one the email's templates read, so that the two say a thing the same way."""

    language: str
    account: str
    invoice: str
    due_date: str
    outstanding: str
    total_due: str
    invoices_total: str
    charges_total: str
    deadline: str
    how_to_pay: str
    pay_online: str
    late_fee: str
    statutory_interest: str
    fixed_compensation: str
    contract_interest: str
    other_charge: str
    annual_rate: str  # "%(rate)s": the locale's percentage, e.g. "10.15%" or "10,15 %"
    monthly_rate: str  # "%(rate)s", as annual_rate
    copy_title: str
    customer: str
    your_reference: str
    issue_date: str
    invoice_amount: str
    paid: str  # paid or credited against the invoice
    payment_terms: str
    payment_reference: str  # "%(invoice)s"
    copy_note: str  # "%(date)s"
    comma: str
    semicolon: str

    def days(self, count: int, fmt: Format | None = None) -> str:
        """A number of days, in the plural form the language's rules give `count`, and written in the digits
        of `fmt`'s locale (ASCII without one)."""
        words = catalog.translations(self.language).ngettext("%(num)s day", "%(num)s days", count)
        return str(words) % {"num": fmt.number(count) if fmt is not None else count}


def _capitalized(text: str) -> str:
    # The email describes a charge inside a sentence ("fixed compensation for recovery costs"); the PDF's
    # table starts a line with the same words.
    return text[:1].upper() + text[1:]


@functools.cache
def labels_in(language: str) -> Labels:
    """The labels in `language`; English for a language without a catalog."""
    if not catalog.has_catalog(language):
        language = FALLBACK_LANGUAGE
    _ = catalog.translations(language).gettext
    return Labels(
        language=language,
        account=_("Account"),
        invoice=_("Invoice"),
        due_date=_("Due date"),
        outstanding=_("Outstanding"),
        total_due=_("Total due"),
        invoices_total=_("Invoices outstanding"),
        charges_total=_("Total charges"),
        deadline=_("Payment deadline"),
        how_to_pay=_("How to pay"),
        pay_online=_("Pay online"),
        late_fee=_capitalized(_("late payment fee")),
        statutory_interest=_("Statutory interest"),
        fixed_compensation=_capitalized(_("fixed compensation for recovery costs")),
        contract_interest=_("Contractual interest"),
        other_charge=_("Charge"),
        annual_rate=_("%(rate)s a year"),
        monthly_rate=_("%(rate)s a month"),
        copy_title=_("Copy of invoice"),
        customer=_("Customer"),
        your_reference=_("Your reference"),
        issue_date=_("Issue date"),
        invoice_amount=_("Invoice amount"),
        paid=_("Paid"),
        payment_terms=_("Payment terms"),
        payment_reference=_("Please quote %(invoice)s as the payment reference."),
        copy_note=_(
            "This copy was produced from our records on %(date)s. It does not replace the original invoice."
        ),
        comma=_(", "),
        semicolon=_("; "),
    )


class Format:
    """Amounts, dates and rates written as the notice text writes them (render's Babel formatting)."""

    def __init__(self, locale: str, language: str) -> None:
        self.locale = format_locale(locale, language)

    def money(self, value: Decimal, currency: str) -> str:
        return format_money(value, currency, self.locale)

    def date(self, value: date) -> str:
        return format_long_date(value, self.locale)

    def rate(self, value: Decimal | int | str) -> str:
        return format_rate(value, self.locale)

    def number(self, value: int) -> str:
        return format_number(value, self.locale)


def charge_text(line: ChargeLine, labels: Labels, fmt: Format) -> str:
    """A charge line as a table row or a statement names it: what it is, on which invoice, and the figures
    a reader checks it with (rate, days, period)."""
    label = {
        "late_fee": labels.late_fee,
        "statutory_interest": labels.statutory_interest,
        "contract_interest": labels.contract_interest,
        "fixed_compensation": labels.fixed_compensation,
    }.get(line.kind, labels.other_charge)
    if line.invoice_id:
        label += f"{labels.comma}{clean_line(line.invoice_id)}"
    # The details a reader checks the figure with (see ChargeLine); anything else is not for the reader.
    details: dict[str, Any] = dict(line.details)
    parts: list[str] = []
    if line.kind == "contract_interest":
        # The rate as the contract states it, a month or a year (render checked "per").
        rate, period = details.get("stated_rate"), details.get("per")
        period_text = labels.monthly_rate if period == "month" else labels.annual_rate
    else:
        rate = details.get("rate")
        period_text = labels.annual_rate if line.kind == "statutory_interest" else "%(rate)s"
    if rate is not None:
        rate_text = fmt.rate(rate) if isinstance(rate, Decimal | int | str) else clean_line(str(rate))
        if labels.language in RTL_LANGUAGES:
            # A left-to-right mark keeps the number and its percent sign together ("1.5%") when the
            # language's rate phrase puts the rate after a right-to-left word ("ماهانه 1.5%"); Babel marks
            # amounts the same way.
            rate_text = f"\u200e{rate_text}"
        parts.append(period_text % {"rate": rate_text})
    if (days := details.get("days")) is not None:
        parts.append(labels.days(int(days), fmt) if str(days).isdigit() else clean_line(str(days)))
    start, end = details.get("from"), details.get("to")
    if isinstance(start, date) and isinstance(end, date):
        parts.append(f"{fmt.date(start)} – {fmt.date(end)}")
    return f"{label} ({labels.semicolon.join(parts)})" if parts else label


def _with_amounts(context: NoticeContext) -> bool:
    """Whether the invoice table has the total and paid columns: when any invoice's total is known."""
    return any(invoice.amount is not None for invoice in context.invoices)


# The invoice table's columns, in proportion to the page width: invoice, due date, total, paid, outstanding
# (without the totals: invoice, due date, outstanding).
INVOICE_COLUMNS = (26, 17, 18, 18, 21)
INVOICE_COLUMNS_WITHOUT_TOTALS = (45, 25, 30)


def _invoice_rows(context: NoticeContext, labels: Labels, fmt: Format) -> list[list[Cell]]:
    """Each invoice (with its payment terms when known) and, when the totals are known, its total and what
    was paid; what is outstanding; then the charges, the total due and the deadline."""
    amounts = _with_amounts(context)
    rows = [[Cell(labels.invoice), Cell(labels.due_date)]]
    if amounts:
        rows[0] += [Cell(labels.invoice_amount, "R"), Cell(labels.paid, "R")]
    rows[0].append(Cell(labels.outstanding, "R"))
    for invoice in context.invoices:
        name = clean_line(invoice.invoice_id)
        if reference := clean_line(invoice.reference or ""):
            name += f" ({reference})"
        if terms := clean_line(invoice.terms or ""):
            name += f"\n{labels.payment_terms}: {terms}"
        row = [Cell(name), Cell(fmt.date(invoice.due_on))]
        if amounts:
            known = invoice.amount is not None
            row += [
                Cell(fmt.money(invoice.amount, invoice.currency) if invoice.amount is not None else "", "R"),
                Cell(fmt.money(invoice.paid, invoice.currency) if known else "", "R"),
            ]
        row.append(Cell(fmt.money(invoice.outstanding, invoice.currency), "R"))
        rows.append(row)
    span = len(rows[0]) - 1

    def total(label: str, amount: str, *, bold: bool = False) -> list[Cell]:
        return [Cell(label, colspan=span, bold=bold), Cell(amount, "R", bold=bold)]

    currency = context.currency
    if context.charges:
        rows.append(total(labels.invoices_total, fmt.money(context.total_due, currency)))
        for charge in context.charges:
            rows.append(total(charge_text(charge, labels, fmt), fmt.money(charge.amount, charge.currency)))
        rows.append(total(labels.charges_total, fmt.money(context.total_charges, currency)))
    rows.append(total(labels.total_due, fmt.money(context.grand_total, currency), bold=True))
    if context.deadline is not None:
        rows.append(total(labels.deadline, fmt.date(context.deadline), bold=True))
    return rows


def _payment_block(pdf: Document, business: Business, labels: Labels, already_said: str = "") -> None:
    lines = [line for line in (clean_line(line) for line in business.payment_instructions) if line]
    link = https_link(business.payment_link)
    if not lines and not link:
        return
    if all(line in already_said for line in lines) and (not link or link in already_said):
        return  # the notice text gives them already
    pdf.gap()
    pdf.paragraph(labels.how_to_pay, bold=True)
    for line in lines:
        pdf.paragraph(line)
    if link:
        pdf.directed(labels.pay_online)
        pdf.set_text_color(0, 0, 160)
        pdf.multi_cell(
            0, LINE_MM, f"{labels.pay_online}: {link}", align=pdf.start, link=link,
            new_x="LMARGIN", new_y="NEXT",
        )  # fmt: skip
        pdf.set_text_color(0)


def _footer_text(business: Business, labels: Labels, account_id: str) -> str:
    return f"{clean_line(business.name)} · {labels.account}: {clean_line(account_id)}"


def letter_pdf(context: NoticeContext, rendered: RenderedNotice) -> bytes:
    """The demand letter / final notice as an A4 PDF (one or two pages for a usual number of invoices):
    letterhead, customer and account, date, the subject, the notice's letter text with the invoice table
    (charges, totals, deadline) in place of its invoice and charges lists, how to pay, the sign-off."""
    labels = labels_in(rendered.lang)
    fmt = Format(context.locale, rendered.lang)
    pdf = Document(
        rtl=rendered.direction == "rtl",
        lang=rendered.lang,
        created=context.sent_on,
        title=rendered.subject,
        author=context.business.name,
        footer=_footer_text(context.business, labels, context.account_id),
    )
    pdf.add_page()
    pdf.letterhead(context.business)
    # The addressee: name and postal address (when known) as on an envelope, then the account.
    pdf.paragraph(clean_line(context.customer_name), bold=True)
    for line in context.postal_address:
        if cleaned := clean_line(line):
            pdf.paragraph(cleaned)
    pdf.paragraph(f"{labels.account}: {clean_line(context.account_id)}")
    pdf.gap()
    pdf.paragraph(fmt.date(context.sent_on), align=pdf.end)
    pdf.gap()
    pdf.paragraph(clean_line(rendered.subject), size=11, bold=True)
    pdf.gap(2)

    letter = letter_text(rendered)
    for text in letter.before:
        pdf.paragraph(text)
        pdf.gap()
    widths = INVOICE_COLUMNS if _with_amounts(context) else INVOICE_COLUMNS_WITHOUT_TOTALS
    draw_table(pdf, widths, _invoice_rows(context, labels, fmt), headings=True)
    _payment_block(pdf, context.business, labels, already_said="\n".join(letter.paragraphs))
    pdf.gap(2)
    for text in letter.after:
        if context.pre_action_protocol and text.startswith(PAP_ANNEX_HEADING):
            # The Letter of Claim's annex (Information Sheet and Reply Form) starts on a page of its own.
            pdf.add_page()
            heading, _, rest = text.partition("\n")
            pdf.paragraph(heading, size=11, bold=True, align="L")
            if rest.strip():
                pdf.paragraph(rest)
            pdf.gap()
            continue
        pdf.paragraph(text)
        pdf.gap()
    return bytes(pdf.output())


def invoice_copy_pdf(
    *,
    business: Business,
    customer_name: str,
    account_id: str,
    invoice: NoticeInvoice,
    amount: Decimal,
    issued_on: date,
    locale: str,
) -> bytes:
    """A one-page copy of an invoice that has no uploaded document, produced on `issued_on` (the notice's
    send date) from the ledger: amount, dates, what is outstanding and how to pay. In the customer's
    language where the labels exist (en, ro, ru, hu, ar, fa), English otherwise."""
    language = language_of(locale)
    if not catalog.has_catalog(language):
        language = FALLBACK_LANGUAGE
    labels = labels_in(language)
    fmt = Format(locale, language)
    invoice_id = clean_line(invoice.invoice_id)
    pdf = Document(
        rtl=language in RTL_LANGUAGES,
        lang=language,
        created=issued_on,
        title=f"{labels.copy_title} {invoice_id}",
        author=business.name,
        footer=_footer_text(business, labels, account_id),
    )
    pdf.add_page()
    pdf.letterhead(business)
    pdf.paragraph(labels.copy_title, size=16, bold=True)
    pdf.gap(2)

    fields = [(labels.invoice, invoice_id)]
    if reference := clean_line(invoice.reference or ""):
        fields.append((labels.your_reference, reference))
    fields += [
        (labels.customer, clean_line(customer_name)),
        (labels.account, clean_line(account_id)),
        (labels.issue_date, fmt.date(invoice.issued_on)),
        (labels.due_date, fmt.date(invoice.due_on)),
        (labels.invoice_amount, fmt.money(amount, invoice.currency)),
    ]
    rows = [[Cell(label), Cell(value)] for label, value in fields]
    outstanding = fmt.money(invoice.outstanding, invoice.currency)
    rows.append([Cell(labels.outstanding, bold=True), Cell(outstanding, bold=True)])
    draw_table(pdf, (35, 65), rows, headings=False)

    pdf.gap(2)
    pdf.paragraph(labels.payment_reference % {"invoice": invoice_id})
    _payment_block(pdf, business, labels)
    pdf.gap(3)
    pdf.set_text_color(GREY)
    pdf.paragraph(labels.copy_note % {"date": fmt.date(issued_on)}, size=9)
    pdf.set_text_color(0)
    return bytes(pdf.output())
