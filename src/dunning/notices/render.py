"""Notice rendering: one stage's subject, text and HTML from the Jinja templates of the customer's language.

Templates live in <dir>/<language>/<stage>.{subject,txt,html}.j2. Several directories can be given: the
first that has a file wins, so a business overrides single shipped templates by putting its own copies in
a directory listed before the shipped one. A stage template extends its language's _base.{html,txt}.j2,
which extends the one layout per format every language shares (<dir>/_layout/); the layout's words (the
salutation, table headings, totals, how to pay, the footer, the charge descriptions, the laws cited) come
from the language's gettext catalog (catalog.py) through _() and ngettext(), the stage templates keep the
letter's own prose. What else every language shares sits in <dir>/_shared/: the HTML invoice and charge
tables, a letter's recipient block, and the English annex of a Letter of Claim (the Pre-Action Protocol's
Information Sheet and Reply Form).

The text template is rendered twice: for the email, and in letter mode (templating.LETTER_VARIABLE) for the
words of the PDF letter (RenderedNotice.letter_text), which the shared layout writes without the email's
heading and signature, one paragraph a line, with LETTER_TABLE_MARKER where the PDF draws its invoice table.

Jinja itself (the environment, the filters, gettext) is templating.py, imported by render_notice: the data
types here are imported by functions that never render (the escalation's decisions, the ingest's payments
on legal cases), and Jinja is the larger part of a cold start they should not pay (issue 12). The locale's
formatting of money, rates, dates and counts is formatting.py.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from dunning.domain.charges import ChargeLine as ChargeLine  # re-exported: templates and PDFs describe it
from dunning.domain.models import strip_bidi_controls

# Re-exported: the notices' formatting was written here before it had a module of its own.
from dunning.notices.formatting import BREAKABLE_SPACE
from dunning.notices.formatting import FALLBACK_LANGUAGE as FALLBACK_LANGUAGE
from dunning.notices.formatting import format_locale as format_locale
from dunning.notices.formatting import format_long_date as format_long_date
from dunning.notices.formatting import format_money as format_money
from dunning.notices.formatting import format_number as format_number
from dunning.notices.formatting import format_rate as format_rate
from dunning.notices.formatting import language_of as language_of
from dunning.notices.formatting import numbering_system as numbering_system

logger = logging.getLogger(__name__)

RTL_LANGUAGES = frozenset({"ar", "fa"})
# The statutory late-payment regimes a notice may cite (NoticeContext.interest_law): EU Directive 2011/7/EU,
# the UK Late Payment of Commercial Debts (Interest) Act 1998, Romanian Law 72/2013, Hungarian Civil Code
# 6:155. The templates word each citation in their language.
INTEREST_LAWS = frozenset({"eu", "uk", "ro", "hu"})
# Pre-Action Protocol for Debt Claims (England and Wales): the debtor has 30 days from the date of the
# Letter of Claim to reply.
PAP_REPLY_DAYS = 30
# The heading the Letter of Claim's English annex (the protocol's Information Sheet and Reply Form) starts
# with: the PDF letter starts a new page there.
PAP_ANNEX_HEADING = "PRE-ACTION PROTOCOL FOR DEBT CLAIMS: INFORMATION SHEET AND REPLY FORM"


@dataclass(frozen=True)
class NoticeInvoice:
    invoice_id: str
    reference: str | None
    issued_on: date
    due_on: date
    outstanding: Decimal
    currency: str
    days_overdue: int  # negative: not yet due
    # Whether this invoice's document is attached to the email: the templates only say "attached" when
    # it is true, and otherwise offer to send a copy.
    attached: bool = False
    # The invoice total and what was paid or credited against it: the notice shows total, paid and
    # outstanding when the total is known (None: only what is outstanding).
    amount: Decimal | None = None
    paid: Decimal = Decimal(0)
    # Payment terms or contract reference (the invoice's `terms` column), quoted in letters.
    terms: str | None = None

    def __post_init__(self) -> None:
        # Ingest strips bidi controls, but rows imported before it did still hold them; every notice part
        # and PDF is made from this object, so this is the one place that covers them all.
        object.__setattr__(self, "invoice_id", strip_bidi_controls(self.invoice_id))
        if self.reference is not None:
            object.__setattr__(self, "reference", strip_bidi_controls(self.reference))
        if self.terms is not None:
            object.__setattr__(self, "terms", strip_bidi_controls(self.terms).strip() or None)


@dataclass(frozen=True)
class Business:
    """Who the notice comes from and how to pay them (configured in the policy's `business`)."""

    name: str
    address: tuple[str, ...] = ()
    reply_to: str | None = None
    # Bank details and the like, one line each, shown as written (e.g. "IBAN RO49 AAAA 1B31 0075 9384 0000").
    payment_instructions: tuple[str, ...] = ()
    payment_link: str | None = None
    # Who signs, one line each; None signs as the accounts team, in the notice's language.
    signature: str | None = None
    logo_url: str | None = None


# The details each kind of charge line must have (see ChargeLine).
CHARGE_DETAILS: Mapping[str, frozenset[str]] = {
    "late_fee": frozenset(),
    "statutory_interest": frozenset({"rate", "days", "from", "to"}),
    "contract_interest": frozenset({"stated_rate", "per", "days", "from", "to"}),
    "fixed_compensation": frozenset(),
}
# contract_interest's "per": the period its stated rate is for.
CONTRACT_INTEREST_PERIODS = frozenset({"month", "year"})


@dataclass(frozen=True)
class AgreedInstalment:
    """One instalment of a payment plan, as a customer email shows it."""

    due_on: date
    amount: Decimal
    paid: Decimal = Decimal(0)

    @property
    def short(self) -> Decimal:
        return max(Decimal(0), self.amount - self.paid)


@dataclass(frozen=True)
class Agreement:
    """What the customer agreed (CONTRACT 9, 10), for the emails that are about it: the confirmation of a
    promise or a plan (stage `agreement_confirmation`) and an instalment's reminder (`instalment_reminder`).
    The notice's `total_due` is the balance the agreement covers, in the notice's currency."""

    kind: str  # "promise" | "plan"
    agreed_on: date
    # A promise: the day the customer promised to pay by, and how much (None: the whole balance).
    until: date | None = None
    amount: Decimal | None = None
    # A plan: its instalments in date order.
    instalments: tuple[AgreedInstalment, ...] = ()
    # An instalment reminder: the instalment it is about, and whether its day has passed (the reminder
    # after the date) or not (the one before).
    instalment: AgreedInstalment | None = None
    late: bool = False


@dataclass(frozen=True)
class NoticeContext:
    stage: str  # template set name (Stage.template_name)
    locale: str  # the customer's locale, e.g. "en", "ro", "ar", "fa", "hu_HU"
    customer_name: str
    account_id: str
    invoices: tuple[NoticeInvoice, ...]
    total_due: Decimal
    currency: str
    business: Business
    sent_on: date  # the (possibly simulated) send date
    deadline: date | None  # payment deadline for the demand letter and final notice
    charges: tuple[ChargeLine, ...] = ()
    # Consumers get an opt-out line (US Regulation F).
    consumer: bool = False
    # What the notice may say, so that it never says what is not true (CONTRACT 7, 13). The defaults say
    # nothing of fees, interest, law or legal action:
    # - charges_apply: the policy charges this customer fees or interest in this currency; only then may a
    #   notice without charge lines warn that charges may be added;
    # - interest_law: the statutory regime ("eu", "uk", "ro", "hu"; INTEREST_LAWS) when statutory interest
    #   applies to this customer; only then does a notice cite a law, and never to a consumer (all four are
    #   business-to-business laws: render_notice drops it for one);
    # - legal_action: the ladder ends with a hand-off to legal; only then may a notice mention legal
    #   consequences;
    # - pre_action_protocol: a UK consumer's demand letter, written as a Letter of Claim under the
    #   Pre-Action Protocol for Debt Claims, with the protocol's Information Sheet and Reply Form (in
    #   English) after the letter.
    charges_apply: bool = False
    interest_law: str | None = None
    legal_action: bool = False
    # The debtor's postal address, one line each, printed on letters (empty: none known).
    postal_address: tuple[str, ...] = ()
    pre_action_protocol: bool = False
    # The agreement an agreement_confirmation or instalment_reminder is about (None: a ladder notice).
    agreement: Agreement | None = None
    # A letter a person prints and posts (a `channel: letter` stage), not an email: it never asks the
    # customer to "reply to this email", it gives the address to write to (reply_to).
    posted: bool = False

    def __post_init__(self) -> None:
        # As NoticeInvoice: the customer's own words, never our templates (which may mark direction).
        object.__setattr__(self, "customer_name", strip_bidi_controls(self.customer_name))
        object.__setattr__(self, "account_id", strip_bidi_controls(self.account_id))
        lines = (strip_bidi_controls(line).strip() for line in self.postal_address)
        object.__setattr__(self, "postal_address", tuple(line for line in lines if line))
        if self.interest_law is not None and self.interest_law not in INTEREST_LAWS:
            raise ValueError(
                f"unknown interest_law {self.interest_law!r}; known: {', '.join(sorted(INTEREST_LAWS))}"
            )

    @property
    def business_name(self) -> str:
        return self.business.name

    @property
    def reply_to(self) -> str | None:
        return self.business.reply_to

    @property
    def total_charges(self) -> Decimal:
        return sum((line.amount for line in self.charges if line.currency == self.currency), Decimal(0))

    @property
    def grand_total(self) -> Decimal:
        """What the notice asks for: the principal outstanding (total_due) and the charges."""
        return self.total_due + self.total_charges

    @property
    def reply_by(self) -> date | None:
        """The last day of the 30 the Pre-Action Protocol gives the debtor to reply (None: not a Letter of
        Claim)."""
        return self.sent_on + timedelta(days=PAP_REPLY_DAYS) if self.pre_action_protocol else None


@dataclass(frozen=True)
class RenderedNotice:
    subject: str
    text: str
    html: str
    lang: str  # language of the templates actually used
    direction: str  # "ltr" | "rtl"
    # The words of the PDF letter (pdf.py, letter_text.py): the text template rendered again in letter mode
    # (`letter_body`): one paragraph a line, without the letterhead and the email signature, and with the
    # line LETTER_TABLE_MARKER where the invoice table goes. None: a notice not made by render_notice (the
    # letter then falls back to `text`).
    letter_text: str | None = None


class TemplateNotFound(LookupError):
    """Neither the customer's language nor the fallback has a template set for the stage."""


# The line the shared text layout writes, in letter mode, where the PDF letter draws its invoice table.
# Private-use characters around it: no customer's or business's text has a line like it.
LETTER_TABLE_MARKER = "\ue001INVOICE TABLE\ue001"


def _https_url(url: str | None, what: str) -> str | None:
    """`url` if it is a plain https:// address, else None (with a warning): the notice's only external
    references are the logo and the payment link, and neither may be http:, javascript: or data:."""
    if not url:
        return None
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname and not any(c.isspace() or ord(c) < 32 for c in url):
        return url
    logger.warning("leaving the %s out of the notice: %r is not an https:// URL", what, url)
    return None


def _check_charges(charges: Sequence[ChargeLine]) -> None:
    for line in charges:
        if line.kind not in CHARGE_DETAILS:
            raise ValueError(f"unknown charge kind {line.kind!r}; known: {', '.join(sorted(CHARGE_DETAILS))}")
        missing = CHARGE_DETAILS[line.kind] - line.facts.keys()
        if missing:
            raise ValueError(f"a {line.kind} charge line needs the details {', '.join(sorted(missing))}")
        if line.kind == "contract_interest" and line.facts["per"] not in CONTRACT_INTEREST_PERIODS:
            per = line.facts["per"]
            raise ValueError(f"a contract_interest charge line is per month or per year, not {per!r}")


def template_problems(directory: Path) -> list[tuple[str, str]]:
    """(file, problem) for each template under `directory` (<language>/<file>.j2, over the shipped ones) that
    does not compile: a syntax error, an unknown filter, a missing include. An unknown variable shows only
    when a notice is rendered (StrictUndefined makes that an error, never an empty string)."""
    from dunning.notices import templating

    return templating.template_problems(directory, shipped_template_dir())


def render_notice(
    context: NoticeContext, template_dirs: Sequence[Path], *, letter: bool = True
) -> RenderedNotice:
    """The notice in the customer's language; with `letter`, also the words of its PDF letter (a second
    render of the text template, which an email-only stage does without)."""
    # Here, not at the top: Jinja is for the functions that render (templating.py).
    from dunning.notices import templating

    env = templating.environment(tuple(template_dirs))
    language = language_of(context.locale)
    templates = templating.template_set(env, language, context.stage)
    if templates is None and language != FALLBACK_LANGUAGE:
        logger.warning(
            "no %r templates for stage %r (locale %r); sending the %r ones",
            language,
            context.stage,
            context.locale,
            FALLBACK_LANGUAGE,
        )
        language = FALLBACK_LANGUAGE
        templates = templating.template_set(env, language, context.stage)
    if templates is None:
        raise TemplateNotFound(
            f"no templates for stage {context.stage!r} in {language!r} under "
            + ", ".join(str(path) for path in template_dirs)
        )

    _check_charges(context.charges)
    subject_template, text_template, html_template = templates
    direction = "rtl" if language in RTL_LANGUAGES else "ltr"
    variables: dict[str, Any] = {field.name: getattr(context, field.name) for field in fields(context)}
    variables |= {
        "business_name": context.business_name,
        "reply_to": context.reply_to,
        "total_charges": context.total_charges,
        "grand_total": context.grand_total,
        # The name the templates used before grand_total; a business's own templates may still use it.
        "total_now_due": context.grand_total,
        "reply_by": context.reply_by,
        # The regimes a notice can cite are all business-to-business: a consumer's notice cites none, whatever
        # the caller passed (CONTRACT 13: consumers never get B2B statutory interest).
        "interest_law": None if context.consumer else context.interest_law,
        "pap_annex_heading": PAP_ANNEX_HEADING,
        "logo_url": _https_url(context.business.logo_url, "logo"),
        "payment_link": _https_url(context.business.payment_link, "payment link"),
    }
    variables |= {
        "lang": language,
        "dir": direction,
        templating.LOCALE_VARIABLE: format_locale(context.locale, language),
        templating.CATALOG_VARIABLE: language,
        # The protocol's annex is in English whatever the letter's language: its dates and amounts too.
        "english_format_locale": format_locale(FALLBACK_LANGUAGE, FALLBACK_LANGUAGE),
        templating.LETTER_VARIABLE: False,
        "letter_table_marker": LETTER_TABLE_MARKER,
    }
    subject = single_line(templating.plain_spaces(subject_template.render(variables)))
    variables["subject"] = subject
    letter_text = (
        templating.plain_spaces(text_template.render(variables | {templating.LETTER_VARIABLE: True}))
        if letter
        else None
    )
    return RenderedNotice(
        subject=subject,
        text=templating.plain_spaces(text_template.render(variables)),
        html=templating.plain_spaces(html_template.render(variables)),
        lang=language,
        direction=direction,
        letter_text=letter_text,
    )


def single_line(subject: str) -> str:
    """The subject with its whitespace collapsed; ValueError if the template produced several lines."""
    lines = subject.strip().splitlines()
    if len(lines) > 1:
        raise ValueError(f"a subject must be one line, the template produced {len(lines)}: {subject!r}")
    # ASCII whitespace only: a no-break space inside a formatted amount or date stays.
    return BREAKABLE_SPACE.sub(" ", subject).strip()


def shipped_template_dir() -> Path:
    """The templates that ship with dunning: inside the package (Lambda layer) or in the checkout."""
    packaged = Path(__file__).parent / "templates"
    if (packaged / FALLBACK_LANGUAGE).is_dir():
        return packaged
    for parent in Path(__file__).resolve().parents:
        if (parent / "templates" / FALLBACK_LANGUAGE).is_dir():
            return parent / "templates"
    raise FileNotFoundError(
        f"cannot find the shipped notice templates: neither {packaged} nor a templates/{FALLBACK_LANGUAGE}/ "
        f"directory above {Path(__file__).parent} exists"
    )
