"""Notice rendering: one stage's subject, text and HTML from the Jinja templates of the customer's language.

Templates live in <dir>/<language>/<stage>.{subject,txt,html}.j2. Several directories can be given: the
first that has a file wins, so a business overrides single shipped templates by putting its own copies in
a directory listed before the shipped one.
"""

from __future__ import annotations

import functools
import logging
import posixpath
import re
import textwrap
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import jinja2

from dunning.money import format_amount

logger = logging.getLogger(__name__)

FALLBACK_LANGUAGE = "en"
RTL_LANGUAGES = frozenset({"ar", "fa"})
_PARTS = ("subject", "txt", "html")


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


@dataclass(frozen=True)
class Business:
    """Who the notice comes from and how to pay them (configured in the policy's `business`)."""

    name: str
    address: tuple[str, ...] = ()
    reply_to: str | None = None
    # Bank details and the like, one line each, shown as written (e.g. "IBAN RO49 AAAA 1B31 0075 9384 0000").
    payment_instructions: tuple[str, ...] = ()
    payment_link: str | None = None
    signature: str = "Accounts team"
    logo_url: str | None = None


@dataclass(frozen=True)
class ChargeLine:
    """A late fee, statutory interest or fixed compensation added to a notice that mentions charges."""

    kind: str  # late_fee | statutory_interest | fixed_compensation
    invoice_id: str | None
    amount: Decimal
    currency: str
    # What a reader needs to check the figure: e.g. {"rate": "10.15", "days": "31", "from": date, "to": date}.
    details: tuple[tuple[str, Any], ...] = ()


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

    @property
    def business_name(self) -> str:
        return self.business.name

    @property
    def reply_to(self) -> str | None:
        return self.business.reply_to

    @property
    def total_charges(self) -> Decimal:
        return sum((line.amount for line in self.charges if line.currency == self.currency), Decimal(0))


@dataclass(frozen=True)
class RenderedNotice:
    subject: str
    text: str
    html: str
    lang: str  # language of the templates actually used
    direction: str  # "ltr" | "rtl"


class TemplateNotFound(LookupError):
    """Neither the customer's language nor the fallback has a template set for the stage."""


def _amount(value: Decimal, currency: str) -> str:
    return f"{format_amount(value, currency)} {currency}"


def _long_date(value: date | None) -> str:
    # A template that formats a date the notice does not carry (deadline on a stage without one) should
    # fail loudly rather than print "None" to a customer.
    if value is None:
        raise ValueError("the template formats a date that this notice does not have (is a deadline set?)")
    # Not strftime("%d"): a clerk writes "5 March 2027". %B is English because nothing calls setlocale.
    return f"{value.day} {value:%B %Y}"


def _iso_date(value: date) -> str:
    return value.isoformat()


def _reflow(text: str, width: int = 76) -> str:
    """Prose rewrapped into even lines, paragraphs kept: a text template breaks its lines wherever its
    {% if %}s fall, and inserted names and amounts change the lengths anyway."""
    paragraphs = (" ".join(block.split()) for block in re.split(r"\n\s*\n", text))
    wrapped = (
        textwrap.fill(p, width, break_long_words=False, break_on_hyphens=False) for p in paragraphs if p
    )
    prose = "\n\n".join(wrapped)
    return prose + "\n" if prose else ""


# English only for now: locale-aware formatting replaces amount and the dates here, in one place.
_FILTERS: dict[str, Callable[..., str]] = {
    "amount": _amount,
    "longdate": _long_date,
    "isodate": _iso_date,
    "reflow": _reflow,
}


class _Environment(jinja2.Environment):
    def join_path(self, template: str, parent: str) -> str:
        # A bare name in {% extends %} / {% include %} means a sibling in the same language directory, so
        # a translation is a copy of en/ with only the words changed.
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
    )
    env.filters.update(_FILTERS)
    return env


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


def render_notice(context: NoticeContext, template_dirs: Sequence[Path]) -> RenderedNotice:
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

    subject_template, text_template, html_template = templates
    direction = "rtl" if language in RTL_LANGUAGES else "ltr"
    variables: dict[str, Any] = {field.name: getattr(context, field.name) for field in fields(context)}
    variables |= {
        "business_name": context.business_name,
        "reply_to": context.reply_to,
        "total_charges": context.total_charges,
    }
    variables |= {"lang": language, "dir": direction}
    subject = single_line(subject_template.render(variables))
    variables["subject"] = subject
    return RenderedNotice(
        subject=subject,
        text=text_template.render(variables),
        html=html_template.render(variables),
        lang=language,
        direction=direction,
    )


def single_line(subject: str) -> str:
    """The subject with its whitespace collapsed; ValueError if the template produced several lines."""
    lines = subject.strip().splitlines()
    if len(lines) > 1:
        raise ValueError(f"a subject must be one line, the template produced {len(lines)}: {subject!r}")
    return " ".join(subject.split())


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
