"""Every stage in every shipped language, rendered from one sample account and compared byte for byte with
the reviewed copies in tests/golden/<language>/<stage>.{subject,txt,html}: the ladder's stages, and the
emails about an agreement (the confirmation of a payment plan and the reminder of its next instalment,
with a second file set each for the other case: a partial promise, an instalment that is late).

The golden files are what a customer receives, so a change to a template or to the formatting shows up as
a diff to read. After changing the templates on purpose, regenerate the files and review the diff:

    DUNNING_UPDATE_GOLDEN=1 .venv/bin/pytest -q tests/unit/test_golden_notices.py
    git diff tests/golden

A .subject file holds the subject and a final newline; .txt and .html hold the two parts exactly.

The other tests here check, for every language, what a reviewer could miss in 108 files: the lang/dir of
the HTML, the locale's formats, the business identity, the charges, the consumer opt-out, escaping of
hostile values, and that a template still fails on an unknown variable. tests/unit/test_agreement_emails.py
checks what the emails about an agreement say.
"""

from __future__ import annotations

import os
import re
from dataclasses import replace
from datetime import date
from decimal import Decimal
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import jinja2
import pytest

from dunning.notices import RenderedNotice, render_notice
from dunning.notices.render import (
    Business,
    ChargeLine,
    format_locale,
    format_long_date,
    format_money,
    format_rate,
)
from tests.support.notices import (
    CHARGE_STAGES,
    CUSTOMER_STAGES,
    LANGUAGES,
    LATE_INSTALMENT,
    LETTERS,
    LOCALES,
    REMINDER_SENT_ON,
    SAMPLE_BUSINESS,
    SAMPLE_INVOICES,
    SAMPLE_PROMISE,
    SHIPPED,
    TEMPLATE_ELEMENTS,
    sample,
)

GOLDEN = Path(__file__).resolve().parents[1] / "golden"
UPDATE = os.environ.get("DUNNING_UPDATE_GOLDEN") == "1"
RTL = {"ar", "fa"}


def render(language: str, stage: str, **changes: Any) -> RenderedNotice:
    return render_notice(sample(language, stage, **changes), [SHIPPED])


def _amount(language: str, value: str) -> str:
    return format_money(Decimal(value), "EUR", format_locale(LOCALES[language], language))


def _date(language: str, value: date) -> str:
    return format_long_date(value, format_locale(LOCALES[language], language))


class _Elements(HTMLParser):
    """Every element with its attributes, to show that nothing a customer or a business supplied became
    markup."""

    def __init__(self) -> None:
        super().__init__()
        self.elements: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, dict(attrs)))


def _elements(html: str) -> list[tuple[str, dict[str, str | None]]]:
    parser = _Elements()
    parser.feed(html)
    return parser.elements


# --- the golden files ------------------------------------------------------------------------------------

# The golden file sets: name -> the stage and the changes to its sample. Each stage under its own name, and
# the other case of each email about an agreement.
GOLDEN_SETS: dict[str, tuple[str, dict[str, Any]]] = {stage: (stage, {}) for stage in CUSTOMER_STAGES} | {
    "agreement_confirmation_promise": ("agreement_confirmation", {"agreement": SAMPLE_PROMISE}),
    "instalment_reminder_late": (
        "instalment_reminder",
        {"agreement": LATE_INSTALMENT, "sent_on": REMINDER_SENT_ON[True]},
    ),
}


@pytest.mark.parametrize("name", GOLDEN_SETS)
@pytest.mark.parametrize("language", LANGUAGES)
def test_a_notice_matches_its_golden_files(language: str, name: str) -> None:
    stage, changes = GOLDEN_SETS[name]
    rendered = render(language, stage, **changes)
    parts = {"subject": rendered.subject + "\n", "txt": rendered.text, "html": rendered.html}
    for suffix, produced in parts.items():
        path = GOLDEN / language / f"{name}.{suffix}"
        data = produced.encode("utf-8")
        if UPDATE:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
            continue
        assert path.is_file(), (
            f"{path} is missing: regenerate with DUNNING_UPDATE_GOLDEN=1 (module docstring)"
        )
        assert data == path.read_bytes(), (
            f"{language}/{name}.{suffix} differs from its golden file; if the change is intended, "
            "regenerate with DUNNING_UPDATE_GOLDEN=1 and review the diff"
        )


def test_there_is_a_golden_file_for_every_part_and_no_other() -> None:
    expected = {
        f"{language}/{name}.{suffix}"
        for language in LANGUAGES
        for name in GOLDEN_SETS
        for suffix in ("subject", "txt", "html")
    } | {f"{language}/call_script.txt" for language in LANGUAGES}  # tests/unit/test_call_scripts.py
    # tests/unit/test_posted_letters.py: the words of a posted demand letter's PDF.
    expected |= {f"{language}/demand_letter_posted.letter.txt" for language in LANGUAGES}
    present = {path.relative_to(GOLDEN).as_posix() for path in GOLDEN.rglob("*") if path.is_file()}
    assert present == expected


def test_every_language_ships_the_same_template_files_as_english() -> None:
    english = sorted(path.name for path in (SHIPPED / "en").iterdir())
    # The layouts, each stage's three parts, the call script.
    assert len(english) == 2 + 3 * len(CUSTOMER_STAGES) + 1
    for language in LANGUAGES:
        assert sorted(path.name for path in (SHIPPED / language).iterdir()) == english, language


# --- what every notice in every language has -------------------------------------------------------------


# The due date of INV-1002, the total outstanding and a small amount as the locale writes them (CLDR, with
# its no-break spaces and, for Arabic and Persian, its direction marks).
FORMATTED = {
    "en": ("15 March 2027", "€1,280.50", "€0.40"),
    "ro": ("15 martie 2027", "1.280,50\xa0EUR", "0,40\xa0EUR"),
    "ru": ("15 марта 2027\u202fг.", "1\xa0280,50\xa0€", "0,40\xa0€"),
    "hu": ("2027. március 15.", "1\xa0280,50\xa0EUR", "0,40\xa0EUR"),
    "ar": ("15 مارس 2027", "\u200f1,280.50\xa0€", "\u200f0.40\xa0€"),
    # Persian in its own digits (CLDR's default numbering system for fa, arabext: ۰-۹, ٬ and ٫).
    "fa": ("۱۵ مارس ۲۰۲۷", "\u200e€\xa0۱٬۲۸۰٫۵۰", "\u200e€\xa0۰٫۴۰"),
}
RATE = {
    "en": "10.15%",
    "ro": "10,15\xa0%",
    "ru": "10,15\xa0%",
    "hu": "10,15%",
    "ar": "10.15%",
    "fa": "۱۰٫۱۵%",
}
# Words of the English templates that must not show through in a translation.
ENGLISH = re.compile(
    r"\b(Dear|Invoice|Total (outstanding|charges|now due)|How to pay|Pay online|Kind regards|Questions|due)\b"
)


@pytest.mark.parametrize("stage", CUSTOMER_STAGES)
@pytest.mark.parametrize("language", LANGUAGES)
def test_a_notice_is_in_its_language_and_direction_with_the_locale_formats(language: str, stage: str) -> None:
    rendered = render(language, stage)
    direction = "rtl" if language in RTL else "ltr"

    assert (rendered.lang, rendered.direction) == (language, direction)
    assert rendered.subject.strip() and rendered.text.strip() and rendered.html.strip()
    assert "\n" not in rendered.subject
    assert rendered.html.startswith("<!DOCTYPE html>")
    html_element = _elements(rendered.html)[0]
    assert html_element == ("html", {"lang": language, "dir": direction})
    due_date, total, _ = FORMATTED[language]
    for part in (rendered.text, rendered.html):
        assert due_date in part and total in part
        for value in ("Ana Popescu", "INV-1001", "INV-1002", "PO-77", "ACC-9"):
            assert value in part
        assert "None" not in part
        # A date that ends a sentence brings its own full stop in Russian and Hungarian.
        assert ".." not in part
        if language != "en":
            assert not ENGLISH.search(part.replace("Example Trading SRL", "")), ENGLISH.search(part)
    assert all(tag in TEMPLATE_ELEMENTS for tag, _ in _elements(rendered.html))


@pytest.mark.parametrize("stage", CUSTOMER_STAGES)
@pytest.mark.parametrize("language", LANGUAGES)
def test_every_notice_shows_who_it_is_from_and_how_to_pay(language: str, stage: str) -> None:
    rendered = render(language, stage)

    for part in (rendered.text, rendered.html):
        for value in ("Example Trading SRL", "Strada Exemplu 12", "400001 Cluj-Napoca", "România"):
            assert value in part
        for line in SAMPLE_BUSINESS.payment_instructions:
            assert line in part
        assert "https://pay.example.com/acc-9" in part
        assert "Maria Ionescu" in part and "Accounts team" not in part
        assert "ar@example.com" in part
    assert '<a href="https://pay.example.com/acc-9"' in rendered.html
    assert '<img src="https://www.example.com/logo.png" alt="Example Trading SRL"' in rendered.html
    assert "logo.png" not in rendered.text
    # The logo is the one external reference; nothing loads a script, a style sheet or a font.
    sources = [attrs.get("src") or attrs.get("href") for _, attrs in _elements(rendered.html)]
    assert [url for url in sources if url] == [
        "https://www.example.com/logo.png",
        "https://pay.example.com/acc-9",
    ]


TEAM = {
    "en": "Accounts team",
    "ro": "Departamentul Contabilitate",
    "ru": "Бухгалтерия",
    "hu": "Pénzügyi osztály",
    "ar": "قسم الحسابات",
    "fa": "واحد امور مالی",
}


@pytest.mark.parametrize("language", LANGUAGES)
def test_without_a_signature_the_accounts_team_signs_in_the_notice_language(language: str) -> None:
    rendered = render(language, "reminder", business=replace(SAMPLE_BUSINESS, signature=None))

    for part in (rendered.text, rendered.html):
        assert TEAM[language] in part and "Maria Ionescu" not in part
        assert ("Accounts team" in part) == (language == "en")


@pytest.mark.parametrize("language", LANGUAGES)
def test_charges_are_itemised_with_the_total_now_due_on_the_stages_that_state_them(language: str) -> None:
    _, _, interest = FORMATTED[language]
    for stage in CUSTOMER_STAGES:
        rendered = render(language, stage)
        for part in (rendered.text, rendered.html):
            assert (interest in part and RATE[language] in part) == (stage in CHARGE_STAGES), (
                language,
                stage,
            )
            if stage in CHARGE_STAGES:
                assert _amount(language, "90.41") in part  # the charges
                assert _amount(language, "1370.91") in part  # the total now due
                assert _date(language, date(2027, 3, 4)) in part and _date(language, date(2027, 4, 2)) in part
        if stage in CHARGE_STAGES:
            assert _amount(language, "1370.91") in rendered.subject


@pytest.mark.parametrize("language", LANGUAGES)
def test_without_charges_the_firm_notice_only_says_they_may_apply(language: str) -> None:
    firm = render(language, "firm_notice", charges=())
    demand = render(language, "demand_letter", charges=())

    for part in (firm.text, firm.html, demand.text, demand.html):
        assert _amount(language, "1370.91") not in part and RATE[language] not in part
    assert _amount(language, "1280.50") in firm.subject
    assert firm.text != render(language, "firm_notice").text


@pytest.mark.parametrize("language", LANGUAGES)
def test_a_percentage_late_fee_and_a_charge_without_an_invoice_render(language: str) -> None:
    fees = (
        ChargeLine("late_fee", "INV-1001", Decimal("24.00"), "EUR", (("rate", "2"), ("of", "1200.00"))),
        ChargeLine("late_fee", None, Decimal("15.00"), "EUR", (("stage", "firm_notice"),)),
    )
    rendered = render(language, "firm_notice", charges=fees)

    for part in (rendered.text, rendered.html):
        assert _amount(language, "24.00") in part and _amount(language, "15.00") in part
        assert _amount(language, "1200.00") in part and _amount(language, "1319.50") in part


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_deadline_is_in_every_part_of_the_demand_and_final_notice(language: str) -> None:
    for stage in LETTERS:
        rendered = render(language, stage)
        for part in (rendered.subject, rendered.text, rendered.html):
            assert _date(language, date(2027, 4, 16)) in part
        with pytest.raises(ValueError, match="deadline"):
            render(language, stage, deadline=None)


@pytest.mark.parametrize("language", LANGUAGES)
def test_consumers_get_the_opt_out_line_in_every_notice(language: str) -> None:
    for stage in CUSTOMER_STAGES:
        business = render(language, stage)
        consumer = render(language, stage, consumer=True)
        for before, after in ((business.text, consumer.text), (business.html, consumer.html)):
            assert "STOP" not in before and "STOP" in after
            # At the end: after the signature, before the footer only.
            assert after.index("STOP") > after.index("Maria Ionescu")


def test_amounts_dates_and_rates_follow_the_locale_conventions() -> None:
    assert [_date(language, date(2027, 3, 15)) for language in ("ro", "hu", "ru")] == [
        "15 martie 2027",
        "2027. március 15.",
        "15 марта 2027\u202fг.",
    ]
    assert [_amount(language, "1280.50") for language in ("en", "ro", "ru")] == [
        "€1,280.50",
        "1.280,50\xa0EUR",
        "1\xa0280,50\xa0€",
    ]
    # The currency's ISO minor units, whatever the locale usually shows.
    assert format_money(Decimal("1234"), "JPY", "ro") == "1.234\xa0JPY"
    assert format_money(Decimal("1.5"), "BHD", "en") == "BHD\xa01.500"
    assert format_money(Decimal("1.5"), "BHD", "ar") == "\u200f1.500\xa0د.ب.\u200f"
    assert format_rate(Decimal("10.15"), "ru") == "10,15\xa0%"
    assert format_rate("12.50", "en") == "12.50%"
    assert format_rate(8, "hu") == "8%"
    with pytest.raises(TypeError, match="exact"):
        format_money(1.5, "EUR", "en")  # type: ignore[arg-type]


def test_a_locale_is_formatted_with_its_territory_and_a_fallback_in_english() -> None:
    assert str(format_locale("hu_HU", "hu")) == "hu_HU"
    assert str(format_locale("en", "en")) == "en_GB"  # "3 March 2027", as the English notices always said
    assert str(format_locale("en_US", "en")) == "en_US"
    # A language without templates is sent in English, so it is formatted in English too.
    assert str(format_locale("de_DE", "en")) == "en_GB"
    assert str(format_locale("ro_XX", "ro")) == "ro"


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_layout_still_fails_on_an_unknown_variable(language: str, tmp_path: Path) -> None:
    stage_dir = tmp_path / language
    stage_dir.mkdir()
    (stage_dir / "tiny.subject.j2").write_text("{{ account_id }}", encoding="utf-8")
    for part in ("txt", "html"):
        (stage_dir / f"tiny.{part}.j2").write_text(
            f'{{% extends "_base.{part}.j2" %}}{{% block intro %}}{{{{ no_such_variable }}}}{{% endblock %}}',
            encoding="utf-8",
        )
    with pytest.raises(jinja2.UndefinedError, match="no_such_variable"):
        render_notice(replace(sample(language, "tiny")), [tmp_path, SHIPPED])


# --- hostile values --------------------------------------------------------------------------------------

SCRIPT = "<script>alert(1)</script>"
BREAKOUT = '"><img src=x onerror=alert(1)>'


@pytest.mark.parametrize("language", LANGUAGES)
def test_hostile_customer_and_business_values_are_escaped_in_every_language(language: str) -> None:
    invoices = (replace(SAMPLE_INVOICES[0], reference=BREAKOUT), SAMPLE_INVOICES[1])
    business = Business(
        name=f"Evil{BREAKOUT}",
        address=(SCRIPT, "Line\r\nBcc: x@evil.example"),
        reply_to=f"ar@example.com{BREAKOUT}",
        payment_instructions=(f"IBAN {SCRIPT}",),
        # Without spaces these pass as https:// URLs, so they reach the attributes and must stay inside.
        payment_link='https://pay.example.com/?a="onmouseover=alert(1)',
        signature=f"Maria{SCRIPT}\r\nBcc: x@evil.example",
        logo_url='https://www.example.com/logo.png?"onerror=alert(1)',
    )
    for stage in CUSTOMER_STAGES:
        rendered = render(
            language,
            stage,
            customer_name=f"Ana{SCRIPT}{BREAKOUT}\r\nBcc: x@evil.example",
            invoices=invoices,
            business=business,
        )

        for tag, attrs in _elements(rendered.html):
            assert tag in TEMPLATE_ELEMENTS
            assert not any(name.startswith("on") for name in attrs)
            if tag == "img":
                assert attrs["src"] == 'https://www.example.com/logo.png?"onerror=alert(1)'
            if tag == "a":
                assert attrs["href"] == 'https://pay.example.com/?a="onmouseover=alert(1)'
        assert "<script" not in rendered.html and "<img src=x" not in rendered.html
        assert (
            "&lt;script&gt;" in rendered.html
            and "&#34;&gt;&lt;img src=x onerror=alert(1)&gt;" in rendered.html
        )
        # The text part carries the values as written: it is never interpreted as markup.
        assert SCRIPT in rendered.text and BREAKOUT in rendered.text
        assert "\r" not in rendered.subject and "\n" not in rendered.subject


@pytest.mark.parametrize(
    "url",
    ["http://pay.example.com/x", "javascript:alert(1)", "data:text/html,x", "https:///x", "https://a b"],
)
def test_only_https_links_and_logos_reach_a_notice(url: str) -> None:
    business = replace(SAMPLE_BUSINESS, payment_link=url, logo_url=url)
    rendered = render("en", "reminder", business=business)

    assert url not in rendered.html and url not in rendered.text
    assert "<img" not in rendered.html and "<a " not in rendered.html
    # Without a link or instructions the notice still says where the payment details are.
    bare = render("en", "reminder", business=replace(business, payment_instructions=()))
    assert "The payment details are on the invoice." in bare.text
