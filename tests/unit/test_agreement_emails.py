"""The emails about an agreement the customer made, in every shipped language: the written confirmation of a
payment plan or a promise to pay (stage agreement_confirmation), and the reminder of a plan's instalment
before its date and after it (instalment_reminder).

They restate what was agreed in the customer's formats, say that the reminders stop while the agreement is
kept, and never threaten: the sample account is on a ladder that ends with legal action and a policy that
charges fees and statutory interest, and none of that shows. tests/unit/test_golden_notices.py holds their
golden files and the checks every notice passes.
"""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import date
from decimal import Decimal
from typing import Any

import jinja2
import pytest

from dunning.notices import RenderedNotice, render_notice
from dunning.notices.render import AgreedInstalment, format_locale, format_long_date, format_money
from tests.support.notices import (
    EARLY_INSTALMENT,
    LANGUAGES,
    LATE_INSTALMENT,
    LOCALES,
    PLAN,
    REMINDER_SENT_ON,
    SAMPLE_PLAN,
    SAMPLE_PROMISE,
    SHIPPED,
    sample,
)


def _render(language: str, stage: str, **changes: Any) -> RenderedNotice:
    return render_notice(sample(language, stage, **changes), [SHIPPED])


def _confirmation(language: str, **changes: Any) -> RenderedNotice:
    return _render(language, "agreement_confirmation", **changes)


def _reminder(language: str, **changes: Any) -> RenderedNotice:
    return _render(language, "instalment_reminder", **changes)


def _amount(language: str, value: str) -> str:
    return format_money(Decimal(value), "EUR", format_locale(LOCALES[language], language))


def _date(language: str, value: date) -> str:
    return format_long_date(value, format_locale(LOCALES[language], language))


def _read(rendered: RenderedNotice) -> list[str]:
    """The subject, the text and the HTML as a reader sees them: without markup, spaces as one (the text is
    wrapped at 76 characters) and in lower case."""
    html = re.sub(r"<[^>]+>", " ", rendered.html)
    return [" ".join(part.split()).lower() for part in (rendered.subject, rendered.text, html)]


def _flat(text: str) -> str:
    return " ".join(text.split())


# How each language says that the usual reminders resume if the agreement is not kept.
REMINDERS_RESUME = {
    "en": "our usual reminders will resume",
    "ro": "notificările obișnuite vor fi reluate",
    "ru": "обычные напоминания возобновятся",
    "hu": "a szokásos emlékeztetők küldését folytatjuk",
    "ar": "فستُستأنف التذكيرات المعتادة",
    "fa": "یادآوری‌های معمول از سر گرفته خواهد شد",
}
# What a friendly email must not say, in each language's own words (lower case): legal consequences or a
# demand, fees or interest (as tests/unit/test_letters_true.py looks for them), or a law.
LEGAL = {
    "en": ("legal", "court", "collection agency", "further steps", "demand"),
    "ro": ("juridic", "instanț", "agenți", "măsuri", "somați"),
    "ru": ("юридическ", "в суд", "агентств", "меры", "требован"),
    "hu": ("jogi", "bírósági", "követeléskezelő", "lépéseket", "felszólít"),
    "ar": ("الفريق القانوني", "قضائية", "شركة تحصيل", "الإجراءات", "مطالبة"),
    "fa": ("حقوقی", "دادگاه", "شرکت وصول", "اقدامات", "مطالبه"),
}
FEES_OR_INTEREST = {
    "en": ("fee", "interest", "charges"),
    "ro": ("penalit", "dobând", "costuri"),
    "ru": ("процент", "плата за просрочку", "начислен"),
    "hu": ("kamat", "késedelmi díj", "költség"),
    "ar": ("فائد", "فوائد", "رسوم"),
    "fa": ("بهره", "هزینه", "جریمه"),
}
LAWS = ("2011/7", "1998", "72/2013", "6:155")


# --- the confirmation --------------------------------------------------------------------------------------


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_confirmation_of_a_plan_lists_every_instalment_in_the_customers_locale(language: str) -> None:
    rendered = _confirmation(language)

    assert _amount(language, "1280.50") in rendered.subject
    for part in (rendered.text, rendered.html):
        for instalment in PLAN:
            assert _date(language, instalment.due_on) in part
            assert _amount(language, str(instalment.amount)) in part
        assert _amount(language, "1280.50") in part  # the balance the plan covers, and the plan's total
    # One line an instalment in the text, its number, date and amount aligned with the others.
    lines = [line for line in rendered.text.splitlines() if _date(language, PLAN[0].due_on) in line]
    assert len(lines) == 1 and _amount(language, "430.50") in lines[0]
    rows = [
        line
        for line in rendered.text.splitlines()
        if any(_date(language, instalment.due_on) in line for instalment in PLAN)
    ]
    assert len(rows) == 3 and len({len(row) for row in rows}) == 1, rows
    # A table row an instalment in the HTML, after the plan's heading and before the invoices.
    html = rendered.html
    assert html.index(_date(language, PLAN[2].due_on)) < html.index("INV-1001")


@pytest.mark.parametrize("language", LANGUAGES)
def test_a_partial_promise_states_the_amount_the_date_and_what_remains(language: str) -> None:
    rendered = _confirmation(language, agreement=SAMPLE_PROMISE)

    promised, until = _amount(language, "450.00"), _date(language, date(2027, 4, 16))
    assert promised in rendered.subject and until in rendered.subject
    for part in (rendered.text, rendered.html):
        assert promised in part and until in part
        assert _amount(language, "830.50") in part  # what remains after the payment
        assert _amount(language, "1280.50") in part
        assert _amount(language, "430.50") not in part  # no plan
    assert _flat(REMINDERS_RESUME[language]) in _flat(rendered.text)


@pytest.mark.parametrize("language", LANGUAGES)
def test_a_promise_of_the_whole_balance_states_it_and_nothing_remaining(language: str) -> None:
    whole = replace(SAMPLE_PROMISE, amount=None)
    rendered = _confirmation(language, agreement=whole)

    assert _amount(language, "1280.50") in rendered.subject
    assert _date(language, date(2027, 4, 16)) in rendered.subject
    for part in (rendered.text, rendered.html):
        assert _amount(language, "450.00") not in part and _amount(language, "830.50") not in part
    # A promise of more than is owed is the whole balance too.
    assert _confirmation(language, agreement=replace(SAMPLE_PROMISE, amount=Decimal("2000.00"))).text == (
        rendered.text
    )


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_confirmation_says_the_reminders_stop_and_resume_if_a_payment_is_missed(language: str) -> None:
    for agreement in (SAMPLE_PLAN, SAMPLE_PROMISE):
        rendered = _confirmation(language, agreement=agreement)
        assert _flat(REMINDERS_RESUME[language]) in _flat(rendered.text)
        assert REMINDERS_RESUME[language].lower() in _read(rendered)[2]


def test_the_english_confirmation_reads_as_a_thank_you_for_the_call() -> None:
    plan = _flat(_confirmation("en").text)
    assert "Thank you for agreeing a payment plan with us today." in plan
    assert "you will pay the balance of €1,280.50 on your account ACC-9 in 3 instalments" in plan
    assert "we will not send you any payment reminders for these invoices" in plan
    promise = _flat(_confirmation("en", agreement=SAMPLE_PROMISE).text)
    assert "to pay €450.00 by 16 April 2027, towards the balance of €1,280.50" in promise
    assert "After this payment, €830.50 will remain outstanding" in promise
    # Agreed on another day than the email is sent: the day, not "today".
    earlier = _confirmation("en", agreement=replace(SAMPLE_PROMISE, agreed_on=date(2027, 4, 1)))
    assert "with us on 1 April 2027 to pay" in _flat(earlier.text)


@pytest.mark.parametrize(
    ("language", "counts"),
    [
        ("en", {1: "in 1 instalment", 2: "in 2 instalments"}),
        ("ro", {1: "într-o singură rată", 2: "în 2 rate", 20: "în 20 de rate"}),
        ("ru", {1: "в 1 платёж", 3: "в 3 платежа", 5: "в 5 платежей", 21: "в 21 платёж"}),
        ("hu", {1: "1 részletben", 6: "6 részletben"}),
        ("ar", {1: "على قسط واحد", 2: "على قسطين", 3: "على 3 أقساط", 11: "على 11 قسطًا"}),
        ("fa", {1: "در ۱ قسط", 12: "در ۱۲ قسط"}),
    ],
)
def test_the_confirmation_counts_the_instalments_in_the_languages_plural_forms(
    language: str, counts: dict[int, str]
) -> None:
    for count, words in counts.items():
        instalments = tuple(AgreedInstalment(date(2027, 5, 1 + n), Decimal("10.00")) for n in range(count))
        rendered = _confirmation(language, agreement=replace(SAMPLE_PLAN, instalments=instalments))
        assert words in rendered.subject and words in _flat(rendered.text), (count, rendered.subject)


# --- the instalment reminder -------------------------------------------------------------------------------


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_late_instalment_reminder_differs_from_the_early_one(language: str) -> None:
    early = _reminder(language)
    late = _reminder(language, agreement=LATE_INSTALMENT, sent_on=REMINDER_SENT_ON[True])

    assert early.subject != late.subject
    for before, after in ((early.text, late.text), (early.html, late.html)):
        assert before != after
        # The same instalment, its amount and date, in both.
        for part in (before, after):
            assert _amount(language, "430.50") in part and _date(language, date(2027, 4, 15)) in part
    for rendered in (early, late):
        assert _amount(language, "430.50") in rendered.subject
        assert _date(language, date(2027, 4, 15)) in rendered.subject


def test_the_english_reminders_say_when_the_instalment_is_due_and_ask_politely_once_it_is_late() -> None:
    early = _flat(_reminder("en").text)
    assert "instalment of your payment plan, €430.50, is due on 15 April 2027 (instalment 1 of 3)." in early
    assert "not yet received" not in early
    late = _flat(_reminder("en", agreement=LATE_INSTALMENT).text)
    assert "We have not yet received the instalment of €430.50 that was due on 15 April 2027" in late
    assert "Please pay it within the next few days to keep the plan on track." in late


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_reminder_lists_the_instalments_still_to_come(language: str) -> None:
    for agreement in (EARLY_INSTALMENT, LATE_INSTALMENT):
        rendered = _reminder(language, agreement=agreement)
        for part in (rendered.text, rendered.html):
            for later in PLAN[1:]:
                assert _date(language, later.due_on) in part
            assert _amount(language, "425.00") in part
            assert _amount(language, "850.00") in part  # what the later instalments come to

    # The plan's last instalment: nothing to come.
    last = _reminder(language, agreement=replace(SAMPLE_PLAN, instalment=PLAN[2]))
    for part in (last.text, last.html):
        assert _date(language, PLAN[2].due_on) in part
        assert _date(language, PLAN[1].due_on) not in part and _amount(language, "850.00") not in part


@pytest.mark.parametrize("language", LANGUAGES)
def test_a_partly_paid_instalment_asks_only_for_what_is_short(language: str) -> None:
    partly = replace(PLAN[1], paid=Decimal("100.00"))
    for late in (False, True):
        agreement = replace(SAMPLE_PLAN, instalment=partly, late=late)
        rendered = _reminder(language, agreement=agreement)
        assert _amount(language, "325.00") in rendered.subject
        for part in (rendered.text, rendered.html):
            assert _amount(language, "425.00") in part  # the instalment
            assert _amount(language, "100.00") in part and _amount(language, "325.00") in part


def test_a_reminder_without_the_plans_instalments_leaves_out_the_number_and_the_list() -> None:
    rendered = _reminder("en", agreement=replace(EARLY_INSTALMENT, instalments=()))
    text = _flat(rendered.text)
    assert "the next instalment of your payment plan, €430.50, is due on 15 April 2027." in text
    assert "of 3" not in text and "instalments after this one" not in text


# --- what they never say -----------------------------------------------------------------------------------


def _every_email(language: str) -> list[RenderedNotice]:
    late = {"agreement": LATE_INSTALMENT, "sent_on": REMINDER_SENT_ON[True]}
    partly_paid = replace(LATE_INSTALMENT, instalment=replace(PLAN[0], paid=Decimal("30.00")))
    return [
        _confirmation(language),
        _confirmation(language, agreement=SAMPLE_PROMISE),
        _confirmation(language, agreement=replace(SAMPLE_PROMISE, amount=None)),
        _reminder(language),
        _reminder(language, **late),
        _reminder(language, agreement=partly_paid),
    ]


@pytest.mark.parametrize("language", LANGUAGES)
def test_nothing_mentions_legal_action_fees_interest_or_a_law(language: str) -> None:
    # The sample allows all of them (legal_action, charges_apply, interest_law): these emails use none.
    assert sample(language, "agreement_confirmation").legal_action
    for rendered in _every_email(language):
        for part in _read(rendered):
            for word in (*LEGAL[language], *FEES_OR_INTEREST[language], *LAWS):
                assert word not in part, (word, rendered.subject)


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_customer_and_business_values_stay_escaped_in_every_variant(language: str) -> None:
    name = 'Ana<script>alert(1)</script>"><img src=x>'
    for rendered in (
        _confirmation(language, customer_name=name, agreement=SAMPLE_PROMISE),
        _reminder(language, customer_name=name, agreement=LATE_INSTALMENT),
    ):
        assert "<script" not in rendered.html and "<img src=x" not in rendered.html
        assert "&lt;script&gt;" in rendered.html


@pytest.mark.parametrize("stage", ["agreement_confirmation", "instalment_reminder"])
def test_an_email_about_an_agreement_without_one_fails_rather_than_guess(stage: str) -> None:
    with pytest.raises(jinja2.UndefinedError):
        _render("en", stage, agreement=None)
