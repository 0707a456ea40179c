"""Letters a person prints and posts (a `channel: letter` stage: NoticeContext.posted), in every shipped
language: the demand letter and the final notice never ask the customer to reply to an email they did not
get, they give the address to write to (the business's reply_to), and a consumer's posted letter carries no
email opt-out ("reply STOP"). The words of the PDF (RenderedNotice.letter_text) are what the customer reads.

The posted demand letter's letter text is compared byte for byte with tests/golden/<language>/
demand_letter_posted.letter.txt; regenerate it as tests/unit/test_golden_notices.py says:

    DUNNING_UPDATE_GOLDEN=1 .venv/bin/pytest -q tests/unit/test_posted_letters.py
    git diff tests/golden

The emailed letters are unchanged: tests/unit/test_golden_notices.py holds their golden files.
"""

from __future__ import annotations

import os
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from dunning.notices import RenderedNotice, render_notice
from tests.support.notices import LANGUAGES, LETTERS, SAMPLE_BUSINESS, SHIPPED, flat, sample

GOLDEN = Path(__file__).resolve().parents[1] / "golden"
UPDATE = os.environ.get("DUNNING_UPDATE_GOLDEN") == "1"
# The sample business's reply_to address.
REPLY_TO = "ar@example.com"
assert SAMPLE_BUSINESS.reply_to == REPLY_TO

# What the emailed demand letter and final notice ask, in each language: to reply to this email.
REPLY_TO_THIS_EMAIL = {
    "en": "reply to this email",
    "ro": "să ne răspundeți",
    "ru": "ответьте на это письмо",
    "hu": "válaszoljon erre az e-mailre",
    "ar": "الرد على هذه الرسالة",
    "fa": "به این ایمیل پاسخ دهید",
}
# What the posted ones ask instead: to write to the business's reply_to address...
WRITE_TO_US_AT = {
    "en": f"write to us at {REPLY_TO}",
    "ro": f"să ne scrieți la adresa {REPLY_TO}",
    "ru": f"напишите нам по адресу {REPLY_TO}",
    "hu": f"forduljon hozzánk írásban a következő címen: {REPLY_TO}",
    "ar": f"الكتابة إلينا على العنوان {REPLY_TO}",
    "fa": f"به نشانی {REPLY_TO} برای ما بنویسید",
}
# ... or, for a business without one, to write to it (its postal address heads the letter).
WRITE_TO_US = {
    "en": "please write to us before",
    "ro": "să ne scrieți înainte de",
    "ru": "напишите нам до",
    "hu": "forduljon hozzánk írásban",
    "ar": "يُرجى الكتابة إلينا قبل",
    "fa": "برای ما بنویسید",
}
# Words of email and of replying that a posted letter (without the Letter of Claim's annex, which offers
# "by email or by post") has no use for.
EMAIL_WORDS = {
    "en": ("email", "reply"),
    "ro": ("e-mail", "răspun"),
    "ru": ("письм", "ответьте"),
    "hu": ("e-mail", "válasz"),
    "ar": ("الرد", "البريد الإلكتروني"),
    "fa": ("ایمیل", "پاسخ"),
}


def render(language: str, stage: str, **changes: Any) -> RenderedNotice:
    return render_notice(sample(language, stage, **changes), [SHIPPED])


def letter_words(rendered: RenderedNotice) -> str:
    assert rendered.letter_text is not None
    return flat(rendered.letter_text)


def html_words(html: str) -> str:
    return flat(re.sub(r"<[^>]+>", " ", html))


@pytest.mark.parametrize("language", LANGUAGES)
def test_a_posted_demand_letter_matches_its_golden_letter_text(language: str) -> None:
    rendered = render(language, "demand_letter", posted=True)
    assert rendered.letter_text is not None
    path = GOLDEN / language / "demand_letter_posted.letter.txt"
    data = rendered.letter_text.encode("utf-8")
    if UPDATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return
    assert path.is_file(), f"{path} is missing: regenerate with DUNNING_UPDATE_GOLDEN=1 (module docstring)"
    assert data == path.read_bytes(), (
        f"{language}/demand_letter_posted.letter.txt differs from its golden file; if the change is "
        "intended, regenerate with DUNNING_UPDATE_GOLDEN=1 and review the diff"
    )


@pytest.mark.parametrize("stage", LETTERS)
@pytest.mark.parametrize("language", LANGUAGES)
def test_a_posted_letter_gives_the_address_to_write_to_instead_of_asking_for_a_reply(
    language: str, stage: str
) -> None:
    emailed = render(language, stage)
    posted = render(language, stage, posted=True)

    assert REPLY_TO_THIS_EMAIL[language] in letter_words(emailed)
    assert REPLY_TO_THIS_EMAIL[language] not in letter_words(posted)
    assert WRITE_TO_US_AT[language] in letter_words(posted) and REPLY_TO in letter_words(posted)
    for word in EMAIL_WORDS[language]:
        assert word not in letter_words(posted).lower(), word
    # The email's parts of a posted notice (never sent) say the same as its letter.
    assert WRITE_TO_US_AT[language] in flat(posted.text)
    assert WRITE_TO_US_AT[language] in html_words(posted.html)
    assert f"<bdi>{REPLY_TO}</bdi>" in posted.html


@pytest.mark.parametrize("stage", LETTERS)
@pytest.mark.parametrize("language", LANGUAGES)
def test_only_the_words_about_replying_change_in_a_posted_letter(language: str, stage: str) -> None:
    emailed = render(language, stage).letter_text
    posted = render(language, stage, posted=True).letter_text
    assert emailed is not None and posted is not None

    emailed_paragraphs, posted_paragraphs = emailed.split("\n\n"), posted.split("\n\n")
    assert len(emailed_paragraphs) == len(posted_paragraphs)
    changed = [(e, p) for e, p in zip(emailed_paragraphs, posted_paragraphs, strict=True) if e != p]
    # The closing's request to reply, and in the final notice the one to send the payment details.
    assert 1 <= len(changed) <= 2
    assert REPLY_TO_THIS_EMAIL[language] in flat(changed[0][0])
    assert WRITE_TO_US_AT[language] in flat(changed[0][1])


@pytest.mark.parametrize("stage", LETTERS)
@pytest.mark.parametrize("language", LANGUAGES)
def test_a_posted_letter_of_a_business_without_a_reply_to_address_asks_to_write(
    language: str, stage: str
) -> None:
    posted = render(language, stage, posted=True, business=replace(SAMPLE_BUSINESS, reply_to=None))

    words = letter_words(posted)
    assert WRITE_TO_US[language] in words
    assert REPLY_TO_THIS_EMAIL[language] not in words
    assert REPLY_TO not in words and "None" not in words
    for part in (flat(posted.text), html_words(posted.html)):
        assert WRITE_TO_US[language] in part and "None" not in part


@pytest.mark.parametrize("language", LANGUAGES)
def test_a_consumer_s_posted_letter_has_no_email_opt_out(language: str) -> None:
    for stage in LETTERS:
        emailed = render(language, stage, consumer=True)
        posted = render(language, stage, consumer=True, posted=True)

        assert "STOP" in letter_words(emailed)
        for part in (letter_words(posted), posted.text, posted.html):
            assert "STOP" not in part
