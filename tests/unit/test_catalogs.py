"""The message catalogs (src/dunning/notices/locale/<language>/LC_MESSAGES/dunning.po): every message the
templates and the PDF use is in every catalog, translated, with its placeholders; nothing else is; and the
plural forms are Babel's CLDR rules for the language.

The messages used are found the way Babel's extractors find them: jinja2's extract_from_ast over every
shipped template (_() / gettext / ngettext calls and {% trans %} blocks) and Babel's Python extractor over
the notices package.
"""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import date
from decimal import Decimal
from pathlib import Path

import babel
import jinja2
import jinja2.ext
import pytest
from babel.messages.catalog import Catalog
from babel.messages.extract import DEFAULT_KEYWORDS, extract_python
from babel.messages.pofile import read_po

import dunning.notices.pdf as pdf_module
from dunning.notices import catalog, render_notice, shipped_template_dir
from dunning.notices.render import ChargeLine
from tests.support.notices import CHARGES, LANGUAGES, sample

TEMPLATES = shipped_template_dir()
PYTHON_SOURCES = sorted(Path(pdf_module.__file__).parent.glob("*.py"))
_PLACEHOLDER = re.compile(r"%\((\w+)\)s")
# The order gettext numbers the plural forms in (Babel's to_gettext): the CLDR categories a language has.
_CLDR_ORDER = ("zero", "one", "two", "few", "many", "other")

Used = dict[str, str | None]  # msgid -> msgid_plural (None: a singular message)


def _template_messages() -> dict[str, Used]:
    env = jinja2.Environment(extensions=["jinja2.ext.i18n"])
    found: dict[str, Used] = {}
    for path in sorted(TEMPLATES.rglob("*.j2")):
        tree = env.parse(path.read_text(encoding="utf-8"))
        for _lineno, _function, extracted in jinja2.ext.extract_from_ast(tree, babel_style=False):
            strings = [s for s in (extracted if isinstance(extracted, tuple) else (extracted,)) if s]
            name = path.relative_to(TEMPLATES).as_posix()
            found.setdefault(name, {})[strings[0]] = strings[1] if len(strings) > 1 else None
    return found


def _python_messages() -> dict[str, Used]:
    found: dict[str, Used] = {}
    for path in PYTHON_SOURCES:
        with path.open("rb") as source:
            for _lineno, _function, messages, _comments in extract_python(source, DEFAULT_KEYWORDS, [], {}):
                strings = [str(m) for m in (messages if isinstance(messages, tuple) else (messages,)) if m]
                if not strings:  # a call with a variable (render's own gettext), not a message
                    continue
                found.setdefault(path.name, {})[strings[0]] = strings[1] if len(strings) > 1 else None
    return found


USED = _template_messages() | _python_messages()
ALL_USED: Used = {msgid: plural for messages in USED.values() for msgid, plural in messages.items()}


def _po(language: str) -> Catalog:
    with catalog.catalog_path(language).open("rb") as source:
        return read_po(source, locale=language)


def test_the_extractors_find_the_layouts_and_the_pdf_messages() -> None:
    # A guard on the test itself: an extractor that found nothing would let every catalog pass.
    assert "Dear %(name)s," in USED["_layout/base.html.j2"]
    assert USED["_layout/base.txt.j2"]["for %(num)s day"] == "for %(num)s days"
    assert "Payment deadline" in USED["pdf.py"] and USED["pdf.py"]["%(num)s day"] == "%(num)s days"


def test_every_shipped_language_has_a_catalog() -> None:
    shipped = {path.name for path in TEMPLATES.iterdir() if path.is_dir() and not path.name.startswith("_")}
    assert set(catalog.languages()) == shipped == set(LANGUAGES)


@pytest.mark.parametrize("language", LANGUAGES)
def test_a_catalog_has_every_message_the_templates_and_the_pdf_use(language: str) -> None:
    po = _po(language)
    problems = []
    for where, messages in sorted(USED.items()):
        for msgid, plural in messages.items():
            message = po.get(msgid)
            if message is None:
                problems.append(f"{where}: {msgid!r} is missing")
            elif plural is not None and (not message.pluralizable or message.id[1] != plural):
                problems.append(f"{where}: {msgid!r} should have the plural {plural!r}")
    assert not problems, f"{catalog.catalog_path(language)}:\n" + "\n".join(problems)


@pytest.mark.parametrize("language", LANGUAGES)
def test_a_catalog_holds_only_messages_that_are_used(language: str) -> None:
    ids = [message.id[0] if isinstance(message.id, tuple) else message.id for message in _po(language)]
    unused = [msgid for msgid in ids if msgid and msgid not in ALL_USED]
    assert not unused, f"{catalog.catalog_path(language)} has messages nothing uses: {unused}"


@pytest.mark.parametrize("language", [language for language in LANGUAGES if language != "en"])
def test_every_message_is_translated_with_its_placeholders(language: str) -> None:
    problems = []
    for message in _po(language):
        if not message.id:
            continue
        ids = [str(msgid) for msgid in (message.id if isinstance(message.id, tuple) else (message.id,))]
        forms = [
            str(form or "")
            for form in (message.string if isinstance(message.string, tuple) else (message.string,))
        ]
        wanted = {name for msgid in ids for name in _PLACEHOLDER.findall(msgid)}
        if message.fuzzy:
            problems.append(f"{ids[0]!r} is fuzzy")
        for index, form in enumerate(forms):
            if not form:
                problems.append(f"{ids[0]!r}: msgstr[{index}] is empty")
                continue
            have = set(_PLACEHOLDER.findall(form))
            # A plural form may say its number in words (the Arabic dual "يومان"): only %(num)s may go.
            missing = wanted - have - ({"num"} if message.pluralizable else set())
            if missing or have - wanted:
                problems.append(f"{ids[0]!r}: placeholders {sorted(have)}, the message has {sorted(wanted)}")
    assert not problems, f"{catalog.catalog_path(language)}:\n" + "\n".join(problems)


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_plural_forms_are_babels_cldr_rules(language: str) -> None:
    rules = babel.Locale.parse(language).plural_form
    categories = [tag for tag in _CLDR_ORDER if tag in rules.tags or tag == "other"]
    po = _po(language)
    assert po.num_plurals == len(categories), po.plural_forms
    translations = catalog.translations(language)
    for n in range(1001):
        assert translations.plural(n) == categories.index(rules(n)), (language, n)  # type: ignore[attr-defined]


def test_arabic_counts_days_with_the_dual_and_the_plural_forms() -> None:
    labels = pdf_module.labels_in("ar")
    assert [labels.days(n) for n in (1, 2, 3, 11, 100)] == [
        "يوم واحد",
        "يومان",
        "3 أيام",
        "11 يومًا",
        "100 يوم",
    ]
    two_days = ChargeLine(
        kind="statutory_interest",
        invoice_id="INV-1001",
        amount=Decimal("0.67"),
        currency="EUR",
        details=(("rate", "10.15"), ("days", "2"), ("from", date(2027, 4, 1)), ("to", date(2027, 4, 2))),
    )
    notice = render_notice(replace(sample("ar", "firm_notice"), charges=(two_days,)), [TEMPLATES])
    for part in (notice.text, notice.html):
        # The dual after لمدة ("for the duration of") is in the genitive: "for two days".
        assert "لمدة يومين" in part and "2 يوم" not in part


@pytest.mark.parametrize(
    ("language", "counts"),
    [
        ("ro", {1: "1 zi", 2: "2 zile", 19: "19 zile", 20: "20 de zile", 101: "101 zile"}),
        ("ru", {1: "1 день", 3: "3 дня", 5: "5 дней", 11: "11 дней", 21: "21 день", 22: "22 дня"}),
        ("hu", {1: "1 nap", 30: "30 nap"}),
        # In the locale's digits: Persian writes its numbers in Extended Arabic-Indic digits.
        ("fa", {1: "۱ روز", 30: "۳۰ روز", 1000: "۱٬۰۰۰ روز"}),
        ("en", {1: "1 day", 30: "30 days", 1000: "1,000 days"}),
    ],
)
def test_the_pdf_counts_days_in_the_languages_plural_forms(language: str, counts: dict[int, str]) -> None:
    labels, fmt = pdf_module.labels_in(language), pdf_module.Format(language, language)
    assert {n: labels.days(n, fmt) for n in counts} == counts


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_email_and_its_pdf_name_the_fixed_compensation_the_same_way(language: str) -> None:
    words = catalog.translations(language).gettext("fixed compensation for recovery costs")
    notice = render_notice(sample(language, "firm_notice"), [TEMPLATES])
    assert words in " ".join(notice.text.split())  # the text is wrapped at 76 characters
    assert pdf_module.labels_in(language).fixed_compensation == words[:1].upper() + words[1:]
    assert any(line.kind == "fixed_compensation" for line in CHARGES)
