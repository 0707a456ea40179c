"""The Jinja side of notice rendering (render.py): the sandboxed environment the templates run in, their
filters and their gettext. Imported by render.py when a notice is first rendered, not with it: the functions
that only handle notices' data (the escalation's decisions, the ingest's payments) never load Jinja."""

from __future__ import annotations

import functools
import posixpath
import re
import textwrap
from collections.abc import Callable
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import babel
import jinja2
import markupsafe
from jinja2.sandbox import SandboxedEnvironment

from dunning.notices import catalog
from dunning.notices.formatting import (
    BREAKABLE_SPACE,
    format_long_date,
    format_money,
    format_number,
    format_rate,
)

PARTS = ("subject", "txt", "html")
# The template variable that carries the Babel locale to the filters.
LOCALE_VARIABLE = "_format_locale"
# The template variable that names the catalog the templates' _() and ngettext() read (the language of the
# templates actually used).
CATALOG_VARIABLE = "_catalog_language"
# The template variable that is true when the text template is rendered for the PDF letter rather than the
# email (RenderedNotice.letter_text); the shared text layout then leaves out the letterhead and the email
# signature, prints LETTER_TABLE_MARKER in place of the invoice and charges lists, and reflow and bullet
# write each paragraph or list item on one line.
LETTER_VARIABLE = "letter_body"
# Stands for the spaces inside a formatted date while the text is wrapped (reflow, bullet), so that a line
# never ends in the middle of "16 April 2027"; render_notice puts plain spaces back in every part. A
# private-use character: no customer text has a meaning for it.
DATE_SPACE = "\ue000"


def _locale_of(context: jinja2.runtime.Context) -> babel.Locale:
    locale = context.get(LOCALE_VARIABLE)
    if not isinstance(locale, babel.Locale):
        raise RuntimeError("notice templates are rendered through render_notice, which sets the locale")
    return locale


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
    return format_long_date(day, _locale_of(context)).replace(" ", DATE_SPACE)


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
    language = context.get(CATALOG_VARIABLE)
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


def _in_letter(context: jinja2.runtime.Context) -> bool:
    return bool(context.get(LETTER_VARIABLE))


@jinja2.pass_context
def _reflow(context: jinja2.runtime.Context, text: str, width: int = 76) -> str:
    """Prose rewrapped into even lines, paragraphs kept: a text template breaks its lines wherever its
    {% if %}s fall, and inserted names and amounts change the lengths anyway. In letter mode each paragraph
    is one line: the PDF wraps it to the page."""
    paragraphs = (BREAKABLE_SPACE.sub(" ", block).strip(" ") for block in re.split(r"\n[ \t]*\n", text))
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
    item = BREAKABLE_SPACE.sub(" ", text).strip(" ")
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
def environment(template_dirs: tuple[Path, ...]) -> jinja2.Environment:
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


def template_problems(directory: Path, shipped: Path) -> list[tuple[str, str]]:
    """render.template_problems: each template under `directory` compiled in a fresh environment."""
    # A fresh environment (not the cached ones the notices render with): nothing of this check lingers.
    env = environment.__wrapped__((directory, shipped))
    problems = []
    for path in sorted(directory.rglob("*.j2")):
        name = path.relative_to(directory).as_posix()
        try:
            env.get_template(name)
        except jinja2.TemplateError as exc:
            where = f" (line {exc.lineno})" if isinstance(exc, jinja2.TemplateSyntaxError) else ""
            problems.append((name, f"{type(exc).__name__}{where}: {exc.message or exc}"))
    return problems


def template_set(env: jinja2.Environment, language: str, stage: str) -> tuple[jinja2.Template, ...] | None:
    names = [f"{language}/{stage}.{part}.j2" for part in PARTS]
    try:
        return tuple(env.get_template(name) for name in names)
    except jinja2.TemplateNotFound as exc:
        if exc.name not in names:  # a broken include inside a template that does exist
            raise
        return None


def plain_spaces(rendered: str) -> str:
    """A rendered part with the spaces inside its dates plain again (DATE_SPACE)."""
    return rendered.replace(DATE_SPACE, " ")
