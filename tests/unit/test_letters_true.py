"""Letters that are true (issue 10, items 6 and 8): a notice says only what applies to this customer.

- fees, interest and late-payment law only when the policy charges this customer (`charges_apply`), a law
  cited only when statutory interest applies (`interest_law`), never to a consumer;
- legal consequences only when the ladder ends with a hand-off to legal (`legal_action`);
- each invoice's total, what was paid and what is outstanding, then the charges, then the total due;
- letters print the debtor's postal address and each invoice's payment terms;
- a UK consumer's demand letter is a Letter of Claim under the Pre-Action Protocol for Debt Claims, with
  the protocol's Information Sheet and Reply Form in English after the letter, whatever its language;
- a consumer imported without a time zone gets their country's.
Every stage in every shipped language, email text and HTML and the letter PDF.
"""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import date
from decimal import Decimal
from typing import Any

import pytest

from dunning.adapters.ledger import Ledger
from dunning.domain.models import country_timezone, postal_address_lines
from dunning.local.embedded_aws import EmbeddedAws
from dunning.notices import NoticeContext, RenderedNotice, render_notice
from dunning.notices.pdf import letter_pdf
from dunning.notices.render import (
    PAP_ANNEX_HEADING,
    ChargeLine,
    format_locale,
    format_long_date,
    format_money,
    format_rate,
)
from tests.conftest import UPLOADED_AT
from tests.support.files import invoice_row, invoices_csv, reject_report
from tests.support.notices import (
    CHARGES,
    LANGUAGES,
    LETTERS,
    LOCALES,
    SAMPLE,
    SHIPPED,
    STAGES,
    TEMPLATE_ELEMENTS,
    flat,
    pdf_pages,
    pdf_text,
    sample,
)

# What a notice must not say unless the flag allows it, in each language's own words (lower case).
FEES_OR_INTEREST = {
    "en": ("fee", "interest", "charges"),
    "ro": ("penalit", "dobând", "costuri"),
    "ru": ("процент", "плата за просрочку", "начислен"),
    "hu": ("kamat", "késedelmi díj", "költség"),
    "ar": ("فائد", "فوائد", "رسوم"),
    "fa": ("بهره", "هزینه", "جریمه"),
}
LAWS = ("2011/7", "1998", "72/2013", "6:155")
LEGAL_CONSEQUENCES = {
    "en": ("legal", "court proceedings", "collection agency", "further steps"),
    "ro": ("juridic", "instanț", "agenți", "măsuri"),
    "ru": ("юридическ", "в суд", "агентств", "меры"),
    "hu": ("jogi", "bírósági", "követeléskezelő", "lépéseket"),
    "ar": ("الفريق القانوني", "قضائية", "شركة تحصيل", "الإجراءات"),
    "fa": ("حقوقی", "دادگاه", "شرکت وصول", "اقدامات"),
}
ADDRESS = ("Flat 2, 14 Harbour Street", "Bristol BS1 4AA")
TERMS = "Contract C-2027-14, 30 days net"


def _render(context: NoticeContext) -> RenderedNotice:
    return render_notice(context, [SHIPPED])


def _parts(rendered: RenderedNotice) -> list[str]:
    # Markup and spacing aside, what a reader sees.
    html = re.sub(r"<[^>]+>", " ", rendered.html)
    return [" ".join(part.split()).lower() for part in (rendered.subject, rendered.text, html)]


def _in_pdf(figure: str, text: str) -> bool:
    """Whether the PDF's text has `figure`: pypdf extracts some runs of Persian (Extended Arabic-Indic)
    digits back to front, though the page shows them the right way round."""
    return figure in text or figure[::-1] in text


def _english(value: Decimal) -> str:
    return format_money(value, "EUR", format_locale("en", "en"))


# --- fees, interest, law, legal action ----------------------------------------------------------------


@pytest.mark.parametrize("language", LANGUAGES)
def test_a_policy_that_charges_nothing_mentions_no_fees_or_interest(language: str) -> None:
    for stage in STAGES:
        context = sample(language, stage, charges=(), charges_apply=False, interest_law=None)
        for part in _parts(_render(context)):
            found = [word for word in FEES_OR_INTEREST[language] if word in part]
            assert not found, (language, stage, found)
            assert not any(law in part for law in LAWS), (language, stage)


@pytest.mark.parametrize("language", LANGUAGES)
def test_a_policy_that_charges_says_so_before_it_charges_and_cites_the_law_only_with_statutory_interest(
    language: str,
) -> None:
    warned = _parts(_render(sample(language, "firm_notice", charges=(), interest_law=None)))
    cited = _parts(_render(sample(language, "firm_notice", charges=(), interest_law="hu")))

    assert all(any(word in part for word in FEES_OR_INTEREST[language]) for part in warned[1:])
    assert not any("6:155" in part for part in warned)
    assert all("6:155" in part for part in cited[1:])
    # The earlier rungs say nothing of charges, whatever the policy.
    for stage in ("pre_due", "reminder", "second_reminder"):
        for part in _parts(_render(sample(language, stage, charges=()))):
            assert not any(word in part for word in FEES_OR_INTEREST[language]), (language, stage)


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_regime_is_cited_in_the_notice_language(language: str) -> None:
    for regime, number in (("eu", "2011/7"), ("uk", "1998"), ("ro", "72/2013"), ("hu", "6:155")):
        for stage in ("firm_notice", "demand_letter"):
            rendered = _render(sample(language, stage, interest_law=regime))
            assert number in rendered.text and number in rendered.html, (language, regime, stage)


@pytest.mark.parametrize("language", LANGUAGES)
def test_a_consumer_is_never_cited_a_late_payment_law(language: str) -> None:
    for stage in STAGES:
        for charges in ((), CHARGES):
            context = sample(language, stage, consumer=True, interest_law="eu", charges=charges)
            for part in _parts(_render(context)):
                assert not any(law in part for law in LAWS), (language, stage)


@pytest.mark.parametrize("language", LANGUAGES)
def test_without_a_hand_off_to_legal_no_notice_mentions_legal_consequences(language: str) -> None:
    for stage in STAGES:
        context = sample(language, stage, charges=(), legal_action=False)
        for part in _parts(_render(context)):
            found = [word for word in LEGAL_CONSEQUENCES[language] if word in part]
            assert not found, (language, stage, found)
    # With one, the final notice says what happens after its deadline.
    final = _parts(_render(sample(language, "final_notice", charges=(), legal_action=True)))
    assert all(any(word in part for word in LEGAL_CONSEQUENCES[language]) for part in final[1:])


@pytest.mark.parametrize("language", LANGUAGES)
def test_without_legal_action_the_final_notice_still_asks_for_payment_by_the_deadline(language: str) -> None:
    rendered = _render(sample(language, "final_notice", legal_action=False))
    deadline = format_long_date(date(2027, 4, 16), format_locale(LOCALES[language], language))
    total = format_money(Decimal("1370.91"), "EUR", format_locale(LOCALES[language], language))
    for part in (rendered.text, rendered.html):
        assert deadline in part and total in part


# --- the invoice table --------------------------------------------------------------------------------


@pytest.mark.parametrize("language", LANGUAGES)
def test_each_invoice_shows_its_total_what_was_paid_and_what_is_outstanding(language: str) -> None:
    locale = format_locale(LOCALES[language], language)
    for stage in STAGES:
        rendered = _render(sample(language, stage))
        for value in ("1500.00", "300.00", "1200.00", "0.00", "80.50"):
            amount = format_money(Decimal(value), "EUR", locale)
            assert amount in rendered.text and amount in rendered.html, (language, stage, value)
    # Without the totals (an export that gave only what is due), only what is outstanding.
    bare = tuple(replace(invoice, amount=None, paid=Decimal(0)) for invoice in SAMPLE.invoices)
    rendered = _render(sample(language, "reminder", invoices=bare))
    assert format_money(Decimal("1500.00"), "EUR", locale) not in rendered.text
    assert format_money(Decimal("1200.00"), "EUR", locale) in rendered.text


def test_the_table_reads_total_paid_outstanding_then_charges_then_the_total_due() -> None:
    text = " ".join(_render(sample("en", "demand_letter")).text.split())

    assert (
        "Invoice INV-1001 (your reference PO-77), due 3 March 2027: total €1,500.00, paid €300.00,"
        " €1,200.00 outstanding; payment terms: Contract C-2027-14, 30 days net" in text
    )
    order = [
        "€1,200.00 outstanding",
        "Total outstanding: €1,280.50",
        "Late payment charges",
        "Total now due: €1,370.91",
    ]
    assert [text.index(words) for words in order] == sorted(text.index(words) for words in order)
    assert SAMPLE.grand_total == Decimal("1280.50")
    assert sample("en", "demand_letter", charges=CHARGES).grand_total == Decimal("1370.91")


@pytest.mark.parametrize("language", LANGUAGES)
def test_contractual_interest_is_described_with_its_stated_rate_and_period(language: str) -> None:
    line = ChargeLine(
        "contract_interest",
        "INV-1001",
        Decimal("18.00"),
        "EUR",
        (
            ("rate", "18.00"),
            ("days", "30"),
            ("from", date(2027, 3, 4)),
            ("to", date(2027, 4, 2)),
            ("principal", "1200.00"),
            ("per", "month"),
            ("stated_rate", "1.5"),
        ),
    )
    locale = format_locale(LOCALES[language], language)
    context = sample(language, "demand_letter", charges=(line,))
    rendered = _render(context)
    pdf = pdf_text(letter_pdf(context, rendered))
    stated, yearly = format_rate("1.5", locale), format_rate("18.00", locale)
    for part in (rendered.text, rendered.html):
        # The rate the contract states, not its yearly equivalent.
        assert flat(stated) in flat(part) and flat(yearly) not in flat(part)
        assert format_money(Decimal("18.00"), "EUR", locale) in part
    # (Text extraction orders the runs of a right-to-left line visually, and pypdf gives some runs of Persian
    # digits back to front: the figures alone, either way round.)
    assert _in_pdf(flat(stated), pdf) and not _in_pdf(flat(yearly), pdf)
    money = flat(format_money(Decimal("18.00"), "EUR", locale))
    assert _in_pdf(re.sub(r"[^\d.,٫٬]", "", money) if language in ("ar", "fa") else money, pdf)
    english = " ".join(_render(sample("en", "firm_notice", charges=(line,))).text.split())
    assert "interest at 1.5% a month under your contract on €1,200.00 for 30 days" in english


# --- letters: address and terms -----------------------------------------------------------------------


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("stage", LETTERS)
def test_a_letter_prints_the_postal_address_and_each_invoices_payment_terms(
    language: str, stage: str
) -> None:
    invoices = (replace(SAMPLE.invoices[0], terms=TERMS), SAMPLE.invoices[1])
    context = sample(language, stage, postal_address=ADDRESS, invoices=invoices)
    rendered = _render(context)
    pdf = pdf_text(letter_pdf(context, rendered))

    for part in (rendered.text, rendered.html, pdf):
        for line in ADDRESS:
            assert line in part, (language, stage, line)
    assert TERMS in flat(rendered.text) and TERMS in rendered.html
    assert "C-2027-14" in pdf and "30 days net" in pdf
    # The address block is the letter's heading, not part of its body: printed once, under the name.
    assert pdf.count(ADDRESS[0]) == 1


def test_only_letters_quote_the_payment_terms_and_the_address() -> None:
    for stage in ("reminder", "firm_notice"):
        rendered = _render(sample("en", stage, postal_address=ADDRESS))
        assert TERMS not in rendered.text and ADDRESS[0] not in rendered.text


def test_without_an_address_the_letter_has_no_empty_block() -> None:
    context = sample("en", "demand_letter", postal_address=())
    rendered = _render(context)
    assert "FORMAL DEMAND FOR PAYMENT\n\nDate: 2 April 2027" in rendered.text
    assert pdf_text(letter_pdf(context, rendered))


# --- the Pre-Action Protocol for Debt Claims ------------------------------------------------------------

PAP_WORDS = ("INFORMATION SHEET", "REPLY FORM", "within 30 days", "National Debtline", "[ ] A.")


def _claim(language: str, **changes: Any) -> NoticeContext:
    claim: dict[str, Any] = {
        "consumer": True,
        "interest_law": None,
        "pre_action_protocol": True,
        "postal_address": ADDRESS,
        "deadline": date(2027, 5, 2),
    }
    return sample(language, "demand_letter", **(claim | changes))


@pytest.mark.parametrize("language", LANGUAGES)
def test_a_letter_of_claim_carries_the_protocols_information_sheet_and_reply_form_in_english(
    language: str,
) -> None:
    context = _claim(language)
    rendered = _render(context)
    pdf = letter_pdf(context, rendered)
    pages = pdf_pages(pdf)

    assert context.reply_by == date(2027, 5, 2)
    for part in (rendered.text, flat(re.sub(r"<[^>]+>", " ", rendered.html)), pdf_text(pdf)):
        assert PAP_ANNEX_HEADING in part
        for words in PAP_WORDS[:-1]:
            assert words in part, (language, words)
        assert "2 May 2027" in part  # 30 days from the letter, in English in the annex
        assert _english(Decimal("1370.91")) in part  # the amount claimed, as the English annex writes it
        assert "Flat 2, 14 Harbour Street" in part  # the debtor's address on the Reply Form
    assert "[ ] A. I owe the debt of €1,370.91" in rendered.text
    # The letter's text (letter mode) keeps the annex after the sign-off, one form item a line, and the
    # heading a paragraph of its own: the PDF starts its page there.
    assert rendered.letter_text is not None
    assert (
        "[ ] A. I owe the debt of €1,370.91 and I agree with the amount." in rendered.letter_text.splitlines()
    )
    assert f"\n\n{PAP_ANNEX_HEADING}\n\n" in rendered.letter_text
    # The annex comes after the letter (after its signature) and, on paper, starts a page of its own.
    assert rendered.text.index(PAP_ANNEX_HEADING) > rendered.text.index("Maria Ionescu")
    assert rendered.text.index(PAP_ANNEX_HEADING) < rendered.text.index("\n--\n")
    assert any(page.lstrip().startswith(PAP_ANNEX_HEADING[:30]) for page in pages[1:])
    assert '<div lang="en" dir="ltr"' in rendered.html
    # The letter itself, in its language, says it is a Letter of Claim and gives the 30 days.
    letter = flat(rendered.text[: rendered.text.index(PAP_ANNEX_HEADING)])
    assert "Letter of Claim" in letter and "30" in letter
    reply_by = flat(format_long_date(date(2027, 5, 2), format_locale(LOCALES[language], language)))
    assert reply_by in letter


def test_a_letter_of_claim_states_whether_interest_or_charges_continue() -> None:
    charging = " ".join(_render(_claim("en", charges=CHARGES)).text.split())
    not_charging = " ".join(_render(_claim("en", charges=(), charges_apply=False)).text.split())

    assert "Interest or charges may continue to be added to the debt until it is paid." in charging
    assert "No interest or other charges are being added to the debt." in not_charging
    assert "court proceedings" in charging
    without_legal = " ".join(_render(_claim("en", legal_action=False)).text.split())
    assert "court" not in without_legal and "Letter of Claim" in without_legal


def test_only_the_flag_makes_a_letter_of_claim() -> None:
    for stage in STAGES:
        rendered = _render(sample("en", stage, consumer=True))
        assert PAP_ANNEX_HEADING not in rendered.text and "Letter of Claim" not in rendered.text


# --- ingest: address, terms, a consumer's time zone ----------------------------------------------------


def test_a_countrys_time_zone_is_where_most_of_it_lives() -> None:
    assert [country_timezone(code) for code in ("GB", "RO", "HU", "US", "RU", "AU", "ES", "IR")] == [
        "Europe/London",
        "Europe/Bucharest",
        "Europe/Budapest",
        "America/New_York",
        "Europe/Moscow",
        "Australia/Sydney",
        "Europe/Madrid",
        "Asia/Tehran",
    ]
    assert country_timezone("EU") is None and country_timezone(None) is None


def test_ingest_stores_the_address_and_terms_and_gives_a_consumer_their_countrys_time_zone(
    aws: EmbeddedAws, ledger: Ledger
) -> None:
    body = invoices_csv(
        invoice_row(
            "INV-1",
            "CONSUMER-GB",
            customer_type="consumer",
            country="GB",
            address_line1="Flat 2",
            address_line2="14 Harbour Street",
            city="Bristol",
            postal_code="BS1 4AA",
            terms="Contract C-7, 30 days net",
        ),
        invoice_row("INV-2", "CONSUMER-RO", customer_type="consumer", country="ro"),
        invoice_row("INV-3", "CONSUMER-TZ", customer_type="consumer", country="GB", timezone="Europe/Dublin"),
        invoice_row("INV-4", "BUSINESS-GB", country="GB"),
        invoice_row("INV-5", "CONSUMER-NOWHERE", customer_type="consumer"),
    )
    result = aws.upload("invoices", "people.csv", body, UPLOADED_AT)
    assert result["imports"][0]["imported"] == 5, reject_report(aws, "people.csv")

    def profile(account: str) -> dict[str, Any]:
        (item,) = [i for i in ledger.account_items(account) if i["kind"] == "account"]
        return item

    assert [profile(a)["timezone"] for a in ("CONSUMER-GB", "CONSUMER-RO", "CONSUMER-TZ")] == [
        "Europe/London",
        "Europe/Bucharest",
        "Europe/Dublin",
    ]
    # A business, and a consumer without a country, keep the policy's default (UTC by default).
    assert profile("BUSINESS-GB")["timezone"] == "UTC" and profile("CONSUMER-NOWHERE")["timezone"] == "UTC"
    stored = profile("CONSUMER-GB")
    assert stored["address"] == {
        "line1": "Flat 2",
        "line2": "14 Harbour Street",
        "city": "Bristol",
        "postal_code": "BS1 4AA",
    }
    assert not any(key in stored for key in ("address_line1", "city", "postal_code"))
    assert postal_address_lines(stored) == ("Flat 2", "14 Harbour Street", "Bristol BS1 4AA")
    assert "address" not in profile("BUSINESS-GB") and postal_address_lines(profile("BUSINESS-GB")) == ()
    (invoice,) = [i for i in ledger.account_items("CONSUMER-GB") if i["kind"] == "invoice"]
    assert invoice["terms"] == "Contract C-7, 30 days net"
    (other,) = [i for i in ledger.account_items("BUSINESS-GB") if i["kind"] == "invoice"]
    assert "terms" not in other

    # Uploaded again unchanged, nothing changes.
    again = aws.upload("invoices", "people.csv", body, UPLOADED_AT)
    assert again["imports"][0]["unchanged"] == 5


def test_a_hostile_address_or_terms_stays_text() -> None:
    script = "<script>alert(1)</script>"
    invoices = (replace(SAMPLE.invoices[0], terms=f'Net 30"><img src=x onerror=alert(1)>{script}'),)
    context = _claim(
        "en", postal_address=(f"1 {script} Street", "Line\r\nBcc: x@evil.example"), invoices=invoices
    )
    rendered = _render(context)
    tags = {match.group(1) for match in re.finditer(r"<([a-z0-9]+)[\s>]", rendered.html)}

    assert "<script" not in rendered.html and "<img src=x" not in rendered.html
    assert "&lt;script&gt;" in rendered.html
    assert tags <= TEMPLATE_ELEMENTS
    assert letter_pdf(context, rendered).startswith(b"%PDF-")
