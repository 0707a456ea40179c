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

The text template is rendered twice: for the email, and in letter mode (LETTER_VARIABLE) for the words of the
PDF letter (RenderedNotice.letter_text), which the shared layout writes without the email's heading and
signature, one paragraph a line, with LETTER_TABLE_MARKER where the PDF draws its invoice table.
"""

from __future__ import annotations

import copy
import functools
import logging
import posixpath
import re
import textwrap
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import babel
import babel.dates
import babel.numbers
import jinja2
import markupsafe
from jinja2.sandbox import SandboxedEnvironment

from dunning.domain.charges import ChargeLine as ChargeLine  # re-exported: templates and PDFs describe it
from dunning.domain.models import strip_bidi_controls
from dunning.domain.money import quantum
from dunning.notices import catalog

logger = logging.getLogger(__name__)

FALLBACK_LANGUAGE = "en"
RTL_LANGUAGES = frozenset({"ar", "fa"})
_PARTS = ("subject", "txt", "html")
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


# A bare "en" is formatted the British way ("3 March 2027", not Babel's American "March 3, 2027"): it is
# what the shipped English has always said, and a US customer whose locale says en_US still gets US dates.
_BARE_LANGUAGE_LOCALES = {"en": "en_GB"}
# The template variable that carries the Babel locale to the filters below.
_LOCALE_VARIABLE = "_format_locale"
# The template variable that names the catalog the templates' _() and ngettext() read (the language of the
# templates actually used).
_CATALOG_VARIABLE = "_catalog_language"
# The template variable that is true when the text template is rendered for the PDF letter rather than the
# email (RenderedNotice.letter_text); the shared text layout then leaves out the letterhead and the email
# signature, prints LETTER_TABLE_MARKER in place of the invoice and charges lists, and reflow and bullet
# write each paragraph or list item on one line.
LETTER_VARIABLE = "letter_body"
# The line the shared text layout writes, in letter mode, where the PDF letter draws its invoice table.
# Private-use characters around it: no customer's or business's text has a line like it.
LETTER_TABLE_MARKER = "\ue001INVOICE TABLE\ue001"


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


def _locale_of(context: jinja2.runtime.Context) -> babel.Locale:
    locale = context.get(_LOCALE_VARIABLE)
    if not isinstance(locale, babel.Locale):
        raise RuntimeError("notice templates are rendered through render_notice, which sets the locale")
    return locale


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


@jinja2.pass_context
def _amount(context: jinja2.runtime.Context, value: Decimal, currency: str) -> str:
    return format_money(value, currency, _locale_of(context))


@jinja2.pass_context
def _percent(context: jinja2.runtime.Context, value: Decimal | int | str) -> str:
    return format_rate(value, _locale_of(context))


@jinja2.pass_context
def _long_date(context: jinja2.runtime.Context, value: date | str | None) -> str:
    # A template that formats a date the notice does not carry (deadline on a stage without one) should
    # fail loudly rather than print "None" to a customer.
    if value is None:
        raise ValueError("the template formats a date that this notice does not have (is a deadline set?)")
    day = date.fromisoformat(value) if isinstance(value, str) else value
    return format_long_date(day, _locale_of(context)).replace(" ", _DATE_SPACE)


@jinja2.pass_context
def _number(context: jinja2.runtime.Context, value: int | Decimal | str) -> str:
    """A count in the locale's digits, for a business's own templates: {{ days|number }}."""
    return format_number(value, _locale_of(context))


@jinja2.pass_context
def _plural(context: jinja2.runtime.Context, count: int | str, **forms: str) -> str:
    """The word that goes with `count` under the locale's plural rules, as in
    {{ days|plural(one="day", other="days") }}. Russian, Romanian and Arabic need more than two forms; a
    form the template leaves out is "other". The shipped templates use ngettext and the catalogs instead;
    this stays for a business's own templates written with it."""
    category = _locale_of(context).plural_form(int(count))
    return forms.get(category, forms["other"])


def _catalog_of(context: jinja2.runtime.Context) -> Any:
    language = context.get(_CATALOG_VARIABLE)
    if not isinstance(language, str):
        raise RuntimeError("notice templates are rendered through render_notice, which sets the language")
    return catalog.translations(language)


# The i18n extension's gettext and ngettext (installed newstyle: "%(name)s" placeholders filled from keyword
# arguments and escaped in HTML). They take the context to find the notice's language, because one cached
# environment renders every language.
@jinja2.pass_context
def _gettext(context: jinja2.runtime.Context, message: str) -> str:
    return str(_catalog_of(context).gettext(message))


@jinja2.pass_context
def _ngettext(context: jinja2.runtime.Context, singular: str, plural: str, count: int) -> str:
    return str(_catalog_of(context).ngettext(singular, plural, count))


@jinja2.pass_context
def _ngettext_formatted(
    context: jinja2.runtime.Context, singular: str, plural: str, count: int, **variables: Any
) -> str:
    """The i18n extension's newstyle ngettext (jinja2.ext._make_new_ngettext), except that the %(num)s it
    fills in is the count as the locale writes it ("۳۰ روز"): the plural form is still chosen by the number
    itself."""
    variables.setdefault("num", format_number(count, _locale_of(context)))
    message = context.call(_ngettext, singular, plural, count)
    if context.eval_ctx.autoescape:
        # As jinja2.ext does: the message is our catalog's (trusted); "%" escapes the variables.
        message = markupsafe.Markup(message)  # noqa: S704
    return message % variables  # type: ignore[no-any-return]


def _iso_date(value: date) -> str:
    return value.isoformat()


# Stands for the spaces inside a formatted date while the text is wrapped (reflow, bullet), so that a line
# never ends in the middle of "16 April 2027"; render_notice puts plain spaces back in every part. A
# private-use character: no customer text has a meaning for it.
_DATE_SPACE = "\ue000"
# Only ASCII whitespace separates words: the no-break spaces Babel puts inside amounts ("1 280,50 €") and
# Russian dates (before the year's abbreviation) must keep them on one line.
_BREAKABLE_SPACE = re.compile(r"[ \t\n\r\f\v]+")


def _in_letter(context: jinja2.runtime.Context) -> bool:
    return bool(context.get(LETTER_VARIABLE))


@jinja2.pass_context
def _reflow(context: jinja2.runtime.Context, text: str, width: int = 76) -> str:
    """Prose rewrapped into even lines, paragraphs kept: a text template breaks its lines wherever its
    {% if %}s fall, and inserted names and amounts change the lengths anyway. In letter mode each paragraph
    is one line: the PDF wraps it to the page."""
    paragraphs = (_BREAKABLE_SPACE.sub(" ", block).strip(" ") for block in re.split(r"\n[ \t]*\n", text))
    if _in_letter(context):
        prose = "\n\n".join(p for p in paragraphs if p)
    else:
        # textwrap too breaks only at ASCII whitespace, so the no-break spaces survive the wrapping.
        wrapped = (
            textwrap.fill(p, width, break_long_words=False, break_on_hyphens=False) for p in paragraphs if p
        )
        prose = "\n\n".join(wrapped)
    return prose + "\n" if prose else ""


@jinja2.pass_context
def _bullet(context: jinja2.runtime.Context, text: str, marker: str = "- ", width: int = 76) -> str:
    """One list item ("- ...", or another marker such as a form's "[ ] "), wrapped with its continuation
    lines indented under the text; on one line in letter mode."""
    item = _BREAKABLE_SPACE.sub(" ", text).strip(" ")
    if _in_letter(context):
        return f"{marker}{item}"
    return textwrap.fill(
        item,
        width,
        initial_indent=marker,
        subsequent_indent=" " * len(marker),
        break_long_words=False,
        break_on_hyphens=False,
    )


_FILTERS: dict[str, Callable[..., str]] = {
    "bullet": _bullet,
    "amount": _amount,
    "percent": _percent,
    "longdate": _long_date,
    "plural": _plural,
    "number": _number,
    "isodate": _iso_date,
    "reflow": _reflow,
}


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


class _Environment(SandboxedEnvironment):
    # Sandboxed: a business's override templates come from its bucket, and a template must not be able to
    # reach into Python (attributes like __class__, calling arbitrary methods) from a notice.

    def join_path(self, template: str, parent: str) -> str:
        # A bare name in {% extends %} / {% include %} means a sibling in the same language directory (a
        # stage template's "_base.html.j2" is its own language's).
        if "/" in template:
            return template
        return posixpath.join(posixpath.dirname(parent), template)


@functools.lru_cache(maxsize=16)
def _environment(template_dirs: tuple[Path, ...]) -> jinja2.Environment:
    env = _Environment(
        loader=jinja2.FileSystemLoader(template_dirs),
        undefined=jinja2.StrictUndefined,
        autoescape=jinja2.select_autoescape(enabled_extensions=("html.j2",), default=False),
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        extensions=["jinja2.ext.i18n"],
    )
    env.filters.update(_FILTERS)
    env.install_gettext_callables(  # type: ignore[attr-defined]  # added by jinja2.ext.i18n
        _gettext, _ngettext, newstyle=True
    )
    # In place of the extension's wrapper, which would print the count in ASCII digits whatever the locale.
    env.globals["ngettext"] = _ngettext_formatted
    return env


def template_problems(directory: Path) -> list[tuple[str, str]]:
    """(file, problem) for each template under `directory` (<language>/<file>.j2, over the shipped ones) that
    does not compile: a syntax error, an unknown filter, a missing include. An unknown variable shows only
    when a notice is rendered (StrictUndefined makes that an error, never an empty string)."""
    # A fresh environment (not the cached ones the notices render with): nothing of this check lingers.
    env = _environment.__wrapped__((directory, shipped_template_dir()))
    problems = []
    for path in sorted(directory.rglob("*.j2")):
        name = path.relative_to(directory).as_posix()
        try:
            env.get_template(name)
        except jinja2.TemplateError as exc:
            where = f" (line {exc.lineno})" if isinstance(exc, jinja2.TemplateSyntaxError) else ""
            problems.append((name, f"{type(exc).__name__}{where}: {exc.message or exc}"))
    return problems


def language_of(locale: str) -> str:
    """The language part of a locale: "hu_HU" and "hu-HU" give "hu"."""
    return locale.replace("-", "_").split("_", 1)[0].lower()


def _template_set(env: jinja2.Environment, language: str, stage: str) -> tuple[jinja2.Template, ...] | None:
    names = [f"{language}/{stage}.{part}.j2" for part in _PARTS]
    try:
        return tuple(env.get_template(name) for name in names)
    except jinja2.TemplateNotFound as exc:
        if exc.name not in names:  # a broken include inside a template that does exist
            raise
        return None


def render_notice(
    context: NoticeContext, template_dirs: Sequence[Path], *, letter: bool = True
) -> RenderedNotice:
    """The notice in the customer's language; with `letter`, also the words of its PDF letter (a second
    render of the text template, which an email-only stage does without)."""
    env = _environment(tuple(template_dirs))
    language = language_of(context.locale)
    templates = _template_set(env, language, context.stage)
    if templates is None and language != FALLBACK_LANGUAGE:
        logger.warning(
            "no %r templates for stage %r (locale %r); sending the %r ones",
            language,
            context.stage,
            context.locale,
            FALLBACK_LANGUAGE,
        )
        language = FALLBACK_LANGUAGE
        templates = _template_set(env, language, context.stage)
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
        _LOCALE_VARIABLE: format_locale(context.locale, language),
        _CATALOG_VARIABLE: language,
        # The protocol's annex is in English whatever the letter's language: its dates and amounts too.
        "english_format_locale": format_locale(FALLBACK_LANGUAGE, FALLBACK_LANGUAGE),
        LETTER_VARIABLE: False,
        "letter_table_marker": LETTER_TABLE_MARKER,
    }
    subject = single_line(_plain_spaces(subject_template.render(variables)))
    variables["subject"] = subject
    letter_text = _plain_spaces(text_template.render(variables | {LETTER_VARIABLE: True})) if letter else None
    return RenderedNotice(
        subject=subject,
        text=_plain_spaces(text_template.render(variables)),
        html=_plain_spaces(html_template.render(variables)),
        lang=language,
        direction=direction,
        letter_text=letter_text,
    )


def _plain_spaces(rendered: str) -> str:
    return rendered.replace(_DATE_SPACE, " ")


def single_line(subject: str) -> str:
    """The subject with its whitespace collapsed; ValueError if the template produced several lines."""
    lines = subject.strip().splitlines()
    if len(lines) > 1:
        raise ValueError(f"a subject must be one line, the template produced {len(lines)}: {subject!r}")
    # ASCII whitespace only: a no-break space inside a formatted amount or date stays.
    return _BREAKABLE_SPACE.sub(" ", subject).strip()


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
