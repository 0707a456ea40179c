"""Notices as the tests build them: the sample account of the golden files (every stage in every shipped
language, the emails about a payment plan or a promise too), a plain English account for the email and
letter tests, charge lines, and what a reader (or a text extractor) finds in a PDF or a notice."""

from __future__ import annotations

import io
import re
from dataclasses import replace
from datetime import date
from decimal import Decimal
from typing import Any

from pypdf import PdfReader

from dunning.domain.policy import DEFAULT_LADDER
from dunning.notices import NoticeContext, NoticeInvoice, shipped_template_dir
from dunning.notices.render import AgreedInstalment, Agreement, Business, ChargeLine

SHIPPED = shipped_template_dir()
# The template sets of the stages a customer receives (the hand-off to legal sends none).
STAGES = [stage.template_name for stage in DEFAULT_LADDER if not stage.is_handoff]
# The emails about an agreement the customer made (a promise to pay or a payment plan): not rungs of the
# ladder, and only ever sent with NoticeContext.agreement.
AGREEMENT_STAGES = ["agreement_confirmation", "instalment_reminder"]
# Every template set a customer receives.
CUSTOMER_STAGES = STAGES + AGREEMENT_STAGES
CHARGE_STAGES = {"firm_notice", "demand_letter", "final_notice"}
LETTERS = ("demand_letter", "final_notice")
# Golden directory (the template language) -> the customer's locale. hu_HU checks that a locale with a
# territory finds its language's templates and is still formatted for the territory.
LOCALES = {"en": "en", "ro": "ro", "ru": "ru", "hu": "hu_HU", "ar": "ar", "fa": "fa"}
LANGUAGES = list(LOCALES)
# Everything the templates write; anything else in a notice came from the data.
TEMPLATE_ELEMENTS = {
    "html", "head", "meta", "title", "body", "table", "tr", "td", "th", "p", "br", "strong", "bdi", "div",
    "h1", "a", "img",
}  # fmt: skip


def interest_line(
    invoice_id: str, amount: str, *, rate: Any, days: Any, start: date, end: date, **more: Any
) -> ChargeLine:
    """A statutory interest line in EUR with the details every notice prints (rate, days, from, to), then
    `more` in the order given."""
    details = (("rate", rate), ("days", days), ("from", start), ("to", end), *more.items())
    return ChargeLine("statutory_interest", invoice_id, Decimal(amount), "EUR", details)


# --- a plain English account -----------------------------------------------------------------------------

INVOICES = (
    NoticeInvoice(
        invoice_id="INV-1001",
        reference="PO-77",
        issued_on=date(2027, 2, 1),
        due_on=date(2027, 3, 3),
        outstanding=Decimal("1200"),
        currency="EUR",
        days_overdue=12,
    ),
    NoticeInvoice(
        invoice_id="INV-1002",
        reference=None,
        issued_on=date(2027, 2, 10),
        due_on=date(2027, 3, 12),
        outstanding=Decimal("80.5"),
        currency="EUR",
        days_overdue=3,
    ),
)
BUSINESS = Business(
    name="Example Trading Ltd",
    address=("12 Harbour Street", "Bristol BS1 4AA", "United Kingdom"),
    reply_to="ar@example.com",
    payment_instructions=("Bank transfer to Example Trading Ltd", "IBAN GB33 BUKB 2020 1555 5555 55"),
    payment_link="https://pay.example.com/acc-9",
)
# The demand letter on 15 March 2027, with two weeks to pay.
CONTEXT = NoticeContext(
    stage="demand_letter",
    locale="en",
    customer_name="Ana Popescu",
    account_id="ACC-9",
    invoices=INVOICES,
    total_due=Decimal("1280.50"),
    currency="EUR",
    business=BUSINESS,
    sent_on=date(2027, 3, 15),
    deadline=date(2027, 3, 29),
)


# --- the golden files' sample account ------------------------------------------------------------------

SAMPLE_INVOICES = (
    # INV-1001 of the plain account, on 2 April, with its total known.
    replace(
        INVOICES[0],
        outstanding=Decimal("1200.00"),
        days_overdue=30,
        attached=True,
        amount=Decimal("1500.00"),
        paid=Decimal("300.00"),
        terms="Contract C-2027-14, 30 days net",
    ),
    # INV-1002 issued three days later.
    replace(
        INVOICES[1],
        issued_on=date(2027, 2, 13),
        due_on=date(2027, 3, 15),
        outstanding=Decimal("80.50"),
        days_overdue=18,
        amount=Decimal("80.50"),
    ),
)


def _eu_interest(invoice_id: str, amount: str, days: str, start: date, principal: str) -> ChargeLine:
    return interest_line(
        invoice_id, amount, rate="10.15", days=days, start=start, end=date(2027, 4, 2), principal=principal,
        reference_rate="2.15", regime="eu",
    )  # fmt: skip


# EU Late Payment Directive, worked by hand: reference rate 2.15 % + 8 points = 10.15 % a year, simple
# daily interest up to the send date (1200.00 x 10.15 % x 30/365 = 10.01; 80.50 x 10.15 % x 18/365 =
# 0.40), and EUR 40 fixed compensation per late invoice. The details are as dunning.domain.charges writes
# them.
CHARGES = (
    _eu_interest("INV-1001", "10.01", "30", date(2027, 3, 4), "1200.00"),
    ChargeLine(kind="fixed_compensation", invoice_id="INV-1001", amount=Decimal("40.00"), currency="EUR"),
    _eu_interest("INV-1002", "0.40", "18", date(2027, 3, 16), "80.50"),
    ChargeLine(kind="fixed_compensation", invoice_id="INV-1002", amount=Decimal("40.00"), currency="EUR"),
)
SAMPLE_BUSINESS = Business(
    name="Example Trading SRL",
    address=("Strada Exemplu 12", "400001 Cluj-Napoca", "România"),
    reply_to="ar@example.com",
    payment_instructions=("Banca Exemplu", "IBAN RO49 AAAA 1B31 0075 9384 0000", "BIC AAAARO22"),
    payment_link="https://pay.example.com/acc-9",
    signature="Maria Ionescu",
    logo_url="https://www.example.com/logo.png",
)
# The plain account on 2 April (the golden files are made from it: a change here shows in their diff).
SAMPLE = replace(
    CONTEXT,
    stage="reminder",
    invoices=SAMPLE_INVOICES,
    business=SAMPLE_BUSINESS,
    sent_on=date(2027, 4, 2),
    deadline=None,
    # A business customer of a policy that charges fees and EU statutory interest, on a ladder that ends
    # with the legal hand-off: every conditional sentence shows (test_letters_true covers the others).
    charges_apply=True,
    interest_law="eu",
    legal_action=True,
    postal_address=("Str. Florilor nr. 5, ap. 3", "400100 Cluj-Napoca"),
)


# The sample account's payment plan, agreed on a call on 2 April: its balance (1,280.50) in three monthly
# instalments, the first a little larger so that they add up.
PLAN = (
    AgreedInstalment(due_on=date(2027, 4, 15), amount=Decimal("430.50")),
    AgreedInstalment(due_on=date(2027, 5, 15), amount=Decimal("425.00")),
    AgreedInstalment(due_on=date(2027, 6, 15), amount=Decimal("425.00")),
)
SAMPLE_PLAN = Agreement(kind="plan", agreed_on=date(2027, 4, 2), instalments=PLAN)
# The other agreement a call can end with: a promise to pay part of the balance, 450.00 by 16 April.
SAMPLE_PROMISE = Agreement(
    kind="promise", agreed_on=date(2027, 4, 2), until=date(2027, 4, 16), amount=Decimal("450.00")
)
# The reminder of the plan's first instalment, sent three days before it is due (12 April), and the one
# after its date when it has not been paid (19 April).
EARLY_INSTALMENT = replace(SAMPLE_PLAN, instalment=PLAN[0])
LATE_INSTALMENT = replace(EARLY_INSTALMENT, late=True)
REMINDER_SENT_ON = {False: date(2027, 4, 12), True: date(2027, 4, 19)}


def sample(language: str, stage: str, **changes: Any) -> NoticeContext:
    """The sample account as the send step passes it at `stage`, with `changes`: charges only on the stages
    that state them (the default `charges.show_on`), a deadline only on the demand letter and the final
    notice, and the agreement only on the emails about one (the plan, and its first instalment three days
    before it is due)."""
    staged = replace(
        SAMPLE,
        stage=stage,
        locale=LOCALES[language],
        charges=CHARGES if stage in CHARGE_STAGES else (),
        deadline=date(2027, 4, 16) if stage in LETTERS else None,
    )
    if stage == "agreement_confirmation":
        staged = replace(staged, agreement=SAMPLE_PLAN)
    elif stage == "instalment_reminder":
        staged = replace(staged, agreement=EARLY_INSTALMENT, sent_on=REMINDER_SENT_ON[False])
    return replace(staged, **changes)


# --- what a reader finds ---------------------------------------------------------------------------------


def flat(text: str) -> str:
    """`text` with every run of spaces (no-break ones too) as one space and the invisible direction marks
    gone: a PDF's text extractor and Babel differ only there."""
    return " ".join(re.sub("[\u200e\u200f\u061c]", "", text).split())


def pdf_pages(pdf: bytes) -> list[str]:
    return [page.extract_text() or "" for page in PdfReader(io.BytesIO(pdf)).pages]


def pdf_text(pdf: bytes) -> str:
    """What a reader finds in `pdf`, its pages together and flat()."""
    return flat("\n".join(pdf_pages(pdf)))


def without_identifiers(text: str, context: NoticeContext) -> str:
    """`text` without what a notice quotes as written, ASCII digits and all: invoice ids and references,
    payment terms, the account id, the addresses and bank details, email addresses and links, the law a
    notice cites (a directive's number), and the PDF's page numbers ("1/2")."""
    business = context.business
    quoted = [
        *(invoice.invoice_id for invoice in context.invoices),
        *(invoice.reference or "" for invoice in context.invoices),
        *(invoice.terms or "" for invoice in context.invoices),
        context.account_id,
        *business.address,
        *business.payment_instructions,
        *context.postal_address,
        "2011/7/EU",
        "EU/2011/7",  # as pypdf extracts it from a right-to-left line
    ]
    # A line may break inside a value, and a table cell's label may come between its words: the value, its
    # comma-separated parts and its words that mix digits with letters ("C-2027-14", "RO49"), never a bare
    # number on its own (that would hide an ASCII count or amount).
    pieces = {piece.strip() for value in quoted for piece in (value, *value.split(","))}
    pieces |= {word.strip(",") for value in quoted for word in value.split() if not word.strip(",").isdigit()}
    for value in sorted(filter(None, pieces), key=len, reverse=True):
        text = re.sub(r"\s+".join(map(re.escape, value.split())), " ", text)
    text = re.sub(r"https://\S+|\S+@\S+", " ", text)
    # The page numbers, last: a directive's number is gone already.
    return re.sub(r"(?<![0-9])[0-9]+/[0-9]+(?![0-9])", " ", text)
