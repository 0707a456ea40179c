"""PDF letters: what a reader (and a text extractor) finds in the demand letter and the invoice copy, in
every script the notices are written in, whatever the customer's data holds."""

from __future__ import annotations

import io
import re
from dataclasses import replace
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from pypdf import PdfReader

from dunning.notices import render_notice
from dunning.notices.letter_text import letter_text
from dunning.notices.pdf import invoice_copy_pdf, letter_pdf
from dunning.notices.pdf_layout import font_dir
from dunning.notices.render import (
    LETTER_TABLE_MARKER,
    ChargeLine,
    NoticeContext,
    RenderedNotice,
    format_locale,
    format_long_date,
    format_money,
)
from tests.support.notices import (
    BUSINESS,
    CONTEXT,
    INVOICES,
    LANGUAGES,
    LETTERS,
    SHIPPED,
    flat,
    interest_line,
    pdf_pages,
    pdf_text,
    sample,
    without_identifiers,
)
from tests.support.notices import CHARGES as SAMPLE_CHARGES

CHARGES = (
    ChargeLine(kind="late_fee", invoice_id="INV-1001", amount=Decimal("40"), currency="EUR"),
    interest_line(
        "INV-1001", "10.34", rate=Decimal("10.15"), days=31, start=date(2027, 3, 4), end=date(2027, 4, 3)
    ),
)
MAX_BYTES = 200 * 1024


def _notice(
    text: str, *, subject: str = "Demand", lang: str = "en", letter: str | None = None
) -> RenderedNotice:
    """A notice with only a plain-text body (and, when given, the text of its letter), as a business's own
    templates might write it."""
    return RenderedNotice(
        subject=subject,
        text=text,
        html="",
        lang=lang,
        direction="rtl" if lang in ("ar", "fa") else "ltr",
        letter_text=letter,
    )


def _template(directory: Path, stage: str, text: str) -> None:
    """A business's own English text template for `stage` (the subject and HTML stay the shipped ones)."""
    (directory / "en").mkdir(exist_ok=True)
    (directory / "en" / f"{stage}.txt.j2").write_text(text, encoding="utf-8")


def _money(value: Decimal, locale: str, language: str) -> str:
    return flat(format_money(value, "EUR", format_locale(locale, language)))


def _long_date(value: date, locale: str, language: str) -> str:
    return flat(format_long_date(value, format_locale(locale, language)))


def _english(context: NoticeContext = CONTEXT) -> RenderedNotice:
    return render_notice(context, [SHIPPED])


def _assert_small_pdf(pdf: bytes, *, pages: int = 2) -> None:
    assert pdf.startswith(b"%PDF-")
    assert len(pdf) < MAX_BYTES  # the fonts are embedded as subsets of the glyphs used
    assert 1 <= len(pdf_pages(pdf)) <= pages


@pytest.mark.parametrize("stage", ["demand_letter", "final_notice"])
def test_english_letter_names_the_customer_the_amount_due_and_the_deadline(stage: str) -> None:
    context = replace(CONTEXT, stage=stage)
    pdf = letter_pdf(context, _english(context))

    _assert_small_pdf(pdf)
    text = pdf_text(pdf)
    assert "Ana Popescu" in text
    assert "ACC-9" in text
    assert _money(Decimal("1280.50"), "en", "en") == "€1,280.50"
    assert "Total due €1,280.50" in text
    assert "Payment deadline 29 March 2027" in text
    assert "INV-1001 (PO-77) 3 March 2027 €1,200.00" in text
    assert "Example Trading Ltd" in text and "IBAN GB33 BUKB 2020 1555 5555 55" in text


def test_the_letter_replaces_the_emails_own_parts() -> None:
    rendered = _english()
    text = pdf_text(letter_pdf(CONTEXT, rendered))

    # The email signature ("reply to this email") and the text's own heading go: the letterhead, the date
    # line and the subject take their place.
    assert "Questions about this notice" in rendered.text
    assert "Questions about this notice" not in text
    assert rendered.subject in text
    assert "15 March 2027" in text
    # The invoice list became the table: its wording is gone, each invoice is a row.
    assert "your reference PO-77" in rendered.text
    assert "your reference PO-77" not in text
    assert text.count("INV-1002") >= 1
    # The text's own sign-off stays.
    assert text.rstrip().endswith("ACC-9 1/1")
    assert "Kind regards" in text


def test_charges_are_itemised_in_the_table_with_the_total_including_them() -> None:
    context = replace(CONTEXT, charges=CHARGES)
    pdf = letter_pdf(context, _english(context))

    text = pdf_text(pdf)
    assert "Invoices outstanding €1,280.50" in text
    assert "Late payment fee, INV-1001 €40.00" in text
    assert "Statutory interest, INV-1001 (10.15% a year; 31 days; 4 March 2027 – 3 April 2027) €10.34" in text
    assert "Total charges €50.34" in text
    assert "Total due €1,330.84" in text


def test_the_table_stands_where_the_template_lists_the_invoices_and_charges() -> None:
    context = replace(CONTEXT, charges=CHARGES, interest_law="eu")
    rendered = _english(context)
    text = pdf_text(letter_pdf(context, rendered))

    # The email's invoice and charges lists give way to the table, which itemises both.
    for listed in ("your reference PO-77", "Late payment charges", "Total now due"):
        assert listed in rendered.text and listed not in text
    # The letter's own words, in the template's order around the table.
    order = [
        "Dear Ana Popescu,",
        "We formally demand payment of the total now due",
        "Invoices outstanding €1,280.50",
        "Late payment fee, INV-1001 €40.00",
        "Total due €1,330.84",
        "The statutory charges above are due under Directive 2011/7/EU",
        "How to pay",
        "If you dispute any amount",
        "Kind regards, Accounts team Example Trading Ltd",
    ]
    assert [text.index(words) for words in order] == sorted(text.index(words) for words in order)


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("stage", LETTERS)
def test_the_letter_is_the_text_template_rendered_in_letter_mode(language: str, stage: str) -> None:
    context = sample(language, stage)
    rendered = render_notice(context, [SHIPPED])
    assert rendered.letter_text is not None
    lines = rendered.letter_text.splitlines()
    letter = letter_text(rendered)

    # One place for the table, no email signature, no heading: the letter starts with the salutation, and
    # the recipient block is the PDF's own.
    assert lines.count(LETTER_TABLE_MARKER) == 1 and LETTER_TABLE_MARKER not in rendered.text
    assert "--" in rendered.text.splitlines() and "--" not in lines
    assert context.customer_name in letter.before[0]
    assert not any(line in rendered.letter_text for line in context.postal_address)
    assert LETTER_TABLE_MARKER not in "".join(letter.paragraphs)
    # Each paragraph on one line: the paragraph after the salutation is the email's, its lines joined.
    email = rendered.text.split("\n\n")
    intro = email[email.index(letter.before[0]) + 1]
    assert "\n" in intro and " ".join(intro.splitlines()) == letter.before[1]


def test_the_letters_paragraphs_run_to_the_page_width_and_its_sign_off_keeps_its_lines() -> None:
    rendered = _english()
    lines = "\n".join(pdf_pages(letter_pdf(CONTEXT, rendered))).splitlines()

    # The email's text breaks its lines at 76 characters; the letter's run on to the page width.
    assert "was due for payment\non 3 March 2027" in rendered.text
    assert any("was due for payment on 3 March" in line for line in lines)
    assert "Kind regards," in lines and "Accounts team" in lines


def test_a_business_template_on_the_shared_layout_gets_the_letter_layout(tmp_path: Path) -> None:
    _template(
        tmp_path,
        "demand_letter",
        """{% extends "_base.txt.j2" %}
{% block letterhead %}
OUR OWN HEADING

{% endblock %}
{% block intro %}
Our own words: please pay what you owe.
{% endblock %}
{% block invoices %}
Our own list: {{ invoices|map(attribute="invoice_id")|join(", ") }}
{% endblock %}
{% block closing %}
Our own closing words.
{% endblock %}
""",
    )
    rendered = render_notice(CONTEXT, [tmp_path, SHIPPED])
    text = pdf_text(letter_pdf(CONTEXT, rendered))

    for emails_own in ("OUR OWN HEADING", "Our own list", "Questions about this notice"):
        assert emails_own in rendered.text and emails_own not in text
    order = [
        "Dear Ana Popescu,",
        "Our own words",
        "Total due €1,280.50",
        "Our own closing words",
        "Kind regards",
    ]
    assert [text.index(words) for words in order] == sorted(text.index(words) for words in order)


def test_a_business_template_without_the_layout_is_the_letter_with_the_table_before_its_sign_off(
    tmp_path: Path,
) -> None:
    _template(
        tmp_path,
        "demand_letter",
        """PAYMENT DEMAND

Dear {{ customer_name }},

Please pay {{ total_due|amount(currency) }} by {{ deadline|longdate }}.

Yours sincerely,
{{ business.name }}

--
Reply to this email with any questions.
""",
    )
    rendered = render_notice(CONTEXT, [tmp_path, SHIPPED])
    text = pdf_text(letter_pdf(CONTEXT, rendered))

    assert rendered.letter_text == rendered.text  # a template that knows nothing of letter mode
    order = [
        "PAYMENT DEMAND",
        "Dear Ana Popescu,",
        "Please pay €1,280.50 by 29 March 2027.",
        "Total due €1,280.50",
        "Yours sincerely, Example Trading Ltd",
    ]
    assert [text.index(words) for words in order] == sorted(text.index(words) for words in order)
    assert "Reply to this email" not in text  # the email signature
    # The text does not give the payment details: the letter adds them.
    assert "How to pay Bank transfer to Example Trading Ltd" in text


def test_a_notice_made_without_letter_text_is_laid_out_from_its_text() -> None:
    rendered = _notice(
        "Dear Ana Popescu,\n\nPlease pay what you owe.\n\nKind regards,\nAccounts team\n\n--\nReply here.\n",
        subject="Payment demand",
    )
    text = pdf_text(letter_pdf(CONTEXT, rendered))

    assert text.index("Please pay what you owe.") < text.index("Total due") < text.index("Kind regards")
    assert "Reply here" not in text


RUSSIAN = _notice(
    (
        "ОФИЦИАЛЬНОЕ ТРЕБОВАНИЕ ОБ ОПЛАТЕ\n\n"
        "Уважаемая Анна Сергеевна Попова,\n\n"
        "Счета, указанные ниже, остаются неоплаченными. Просим погасить задолженность\n"
        "до указанного срока.\n\n"
        "С уважением,\nБухгалтерия\n"
    ),
    subject="Официальное требование об оплате",
    lang="ru",
)
ROMANIAN = _notice(
    (
        "Stimate domnule Ștefan Țăranu,\n\n"
        "Facturile de mai jos sunt încă neachitate. Vă rugăm să achitați suma datorată\n"
        "până la termenul de plată; dacă ați plătit deja, vă mulțumim.\n\n"
        "Cu stimă,\nDepartamentul financiar\n"
    ),
    subject="Somație de plată",
    lang="ro",
)
HUNGARIAN = _notice(
    (
        "Tisztelt Kővári Győző Úr!\n\n"
        "Az alábbi számlák kiegyenlítése még nem történt meg. Kérjük, fizesse meg a\n"
        "tartozást a megadott határidőig; ha már fizetett, köszönjük.\n\n"
        "Üdvözlettel:\nPénzügyi osztály\n"
    ),
    subject="Fizetési felszólítás",
    lang="hu",
)


@pytest.mark.parametrize(
    ("locale", "customer", "rendered", "words"),
    [
        ("ru", "Анна Сергеевна Попова", RUSSIAN, ["Просим погасить задолженность", "Итого к оплате"]),
        ("ro_RO", "Ștefan Țăranu", ROMANIAN, ["achitați", "mulțumim", "Termen de plată", "Data scadenței"]),
        ("hu_HU", "Kővári Győző", HUNGARIAN, ["határidőig", "köszönjük", "Fizetendő összesen"]),
    ],
)
def test_cyrillic_and_central_european_letters_come_out_intact(
    locale: str, customer: str, rendered: RenderedNotice, words: list[str]
) -> None:
    context = replace(CONTEXT, locale=locale, customer_name=customer)
    pdf = letter_pdf(context, rendered)

    _assert_small_pdf(pdf)
    text = pdf_text(pdf)
    assert customer in text
    for word in words:
        assert word in text
    language = rendered.lang
    assert _money(Decimal("1280.50"), locale, language) in text
    assert _long_date(date(2027, 3, 29), locale, language) in text
    # Romanian's comma-below letters are not swapped for the look-alike cedilla ones.
    assert not set("şţŞŢ") & set(text)


ARABIC = _notice(
    (
        "السيد أحمد خليل المحترم،\n\n"
        "نطالبكم رسمياً بسداد إجمالي المبلغ المستحق قبل الموعد المحدد أدناه.\n\n"
        "- الفاتورة INV-1001 (مرجعكم PO-77)\n"
        "- الفاتورة INV-1002\n\n"
        "مع خالص التحية،\nفريق الحسابات\n"
    ),
    subject="مطالبة رسمية بالسداد",
    lang="ar",
    letter=(
        "السيد أحمد خليل المحترم،\n\n"
        "نطالبكم رسمياً بسداد إجمالي المبلغ المستحق قبل الموعد المحدد أدناه.\n\n"
        f"{LETTER_TABLE_MARKER}\n\n"
        "مع خالص التحية،\nفريق الحسابات\n"
    ),
)
PERSIAN = _notice(
    (
        "جناب آقای محمد رضایی،\n\n"
        "لطفاً مانده بدهی خود را تا مهلت تعیین\u200cشده پرداخت کنید.\n\n"
        "با احترام،\nواحد حسابداری\n"
    ),
    subject="اخطار رسمی پرداخت",
    lang="fa",
)


@pytest.mark.parametrize(
    ("locale", "customer", "rendered", "words"),
    [
        ("ar", "أحمد خليل", ARABIC, ["نطالبكم", "رسمياً", "بسداد", "إجمالي", "آخر موعد للسداد", "مارس"]),
        ("fa_IR", "محمد رضایی", PERSIAN, ["لطفاً", "پرداخت", "مهلت", "جمع قابل پرداخت", "مارس"]),
    ],
)
def test_arabic_and_persian_letters_are_shaped_right_to_left_in_their_language(
    locale: str, customer: str, rendered: RenderedNotice, words: list[str]
) -> None:
    """What pypdf extracts from a shaped right-to-left letter: every word intact, its letters in logical
    order (the embedded subset maps the joined glyph forms back to the letters); Latin runs and ASCII
    digits intact; the order of the runs within a mixed line is visual, so a date comes out as
    "2027 مارس29" and is checked by its parts."""
    context = replace(CONTEXT, locale=locale, customer_name=customer)
    pdf = letter_pdf(context, rendered)

    _assert_small_pdf(pdf)
    text = pdf_text(pdf)
    for word in words:
        assert word in text
    for name_part in customer.split():
        assert name_part in text
    assert "INV-1001" in text and "(PO-77)" in text
    # In the locale's digits: ASCII for ar (CLDR's default numbering system for it is latn), Extended
    # Arabic-Indic for fa ("۱٬۲۸۰٫۵۰"). pypdf gives some runs of Persian digits back to front, though the
    # page shows them the right way round: each figure is looked for either way.
    locale_format = format_locale(locale, rendered.lang)
    total = re.sub(r"[^\d.,٫٬]", "", format_money(Decimal("1280.50"), "EUR", locale_format))
    assert total == ("1,280.50" if locale == "ar" else "۱٬۲۸۰٫۵۰")
    assert (total in text or total[::-1] in text) and "€" in text
    deadline = format_long_date(date(2027, 3, 29), locale_format)
    for part in (word for word in deadline.split() if word[0].isdigit()):
        assert part in text or part[::-1] in text
    if locale != "ar":
        assert "1,280.50" not in text and "2027" not in text and "7202" not in text
    # The table stands where the letter's text has its marker; the email's list is not the letter's.
    assert "مرجعكم" not in text and "PO-77" in text
    # Not the English fallback.
    assert "Total due" not in text


def test_a_persian_letter_writes_every_number_in_persian_digits() -> None:
    """Amounts, dates, rates and counts of days in Extended Arabic-Indic digits, as in the email; what the
    customer or the business wrote (ids, references, addresses, bank details, links) stays as written, and
    so does the page number (fpdf2 writes the page count in ASCII digits)."""
    context = replace(sample("fa", "demand_letter"), charges=SAMPLE_CHARGES)
    rendered = render_notice(context, [SHIPPED])
    text = pdf_text(letter_pdf(context, rendered))

    assert "۱۰٫۱۵%" in text or "%۵۱٫۰۱" in text  # the rate (pypdf may reverse the run)
    assert "۳۰ روز" in text or "۰۳ روز" in text  # the days counted (ngettext's number)
    assert not re.search(r"[0-9]", without_identifiers(text, context)), without_identifiers(text, context)


def test_building_twice_gives_the_same_bytes() -> None:
    context = replace(CONTEXT, charges=CHARGES)
    rendered = _english(context)

    first = letter_pdf(context, rendered)
    assert letter_pdf(context, rendered) == first
    assert letter_pdf(replace(context, locale="ar"), ARABIC) == letter_pdf(
        replace(context, locale="ar"), ARABIC
    )
    metadata = PdfReader(io.BytesIO(first)).metadata
    assert metadata is not None and metadata.creation_date == datetime(2027, 3, 15, tzinfo=UTC)


def test_hostile_customer_data_is_just_text() -> None:
    name = (
        "=HYPERLINK(\"x\") <script>alert('1')</script> 张伟 😀 \u202eevil\r\nBcc: x@example.com\t\x00{nb} "
        + "W" * 300
    )
    reference = "R" * 250
    context = replace(
        CONTEXT,
        customer_name=name,
        account_id="ACC-9\r\nX-Injected: 1",
        invoices=(replace(INVOICES[0], reference=reference), INVOICES[1]),
    )
    rendered = _notice(
        f"Dear {name},\n\nPlease pay.\n\nKind regards,\nAccounts team\n", subject="Demand\u202e for payment"
    )
    pdf = letter_pdf(context, rendered)

    _assert_small_pdf(pdf)
    text = pdf_text(pdf)
    assert "<script>alert('1')</script>" in text
    assert "{nb}" in text  # not replaced by the page count
    assert "\u202e" not in text
    # Words too long for their line or table cell are broken, not cut off.
    assert text.count("W") >= 600 and text.count("R") >= 250
    assert "ACC-9 X-Injected: 1" in text  # one line, whatever the field held
    assert "Total due €1,280.50" in text


def test_many_invoices_run_over_pages_numbered_n_of_total() -> None:
    invoices = tuple(
        replace(INVOICES[1], invoice_id=f"INV-{2000 + n}", outstanding=Decimal(10)) for n in range(60)
    )
    context = replace(CONTEXT, invoices=invoices, total_due=Decimal(600))
    pdf = letter_pdf(context, _english(context))
    pages = pdf_pages(pdf)

    assert len(pages) >= 2
    for number, page in enumerate(pages, start=1):
        assert flat(page).endswith(f"ACC-9 {number}/{len(pages)}")
    assert "INV-2059" in pdf_text(pdf)


def test_only_an_https_payment_link_is_shown() -> None:
    business = replace(BUSINESS, payment_instructions=(), payment_link="javascript:alert(1)")
    rendered = _notice("Dear Ana Popescu,\n\nPlease pay.\n")
    text = pdf_text(letter_pdf(replace(CONTEXT, business=business), rendered))

    assert "javascript" not in text
    assert "How to pay" not in text


def test_payment_instructions_missing_from_the_text_are_added() -> None:
    rendered = _notice("Dear Ana Popescu,\n\nPlease pay.\n")
    text = pdf_text(letter_pdf(CONTEXT, rendered))

    assert "How to pay Bank transfer to Example Trading Ltd IBAN GB33 BUKB 2020 1555 5555 55" in text
    assert "Pay online: https://pay.example.com/acc-9" in text


def _copy(locale: str = "en", customer_name: str = "Ana Popescu") -> bytes:
    return invoice_copy_pdf(
        business=BUSINESS,
        customer_name=customer_name,
        account_id="ACC-9",
        invoice=INVOICES[0],
        amount=Decimal("1500"),
        issued_on=date(2027, 3, 15),
        locale=locale,
    )


def test_invoice_copy_states_the_invoice_and_its_amounts() -> None:
    pdf = _copy()

    _assert_small_pdf(pdf, pages=1)
    text = pdf_text(pdf)
    assert text.startswith("Example Trading Ltd")
    assert "Copy of invoice" in text
    assert "Invoice INV-1001" in text
    assert "Your reference PO-77" in text
    assert "Issue date 1 February 2027" in text and "Due date 3 March 2027" in text
    assert "Invoice amount €1,500.00" in text
    assert "Outstanding €1,200.00" in text
    assert "Please quote INV-1001 as the payment reference." in text
    assert "IBAN GB33 BUKB 2020 1555 5555 55" in text
    assert _copy() == pdf


@pytest.mark.parametrize(
    ("locale", "title"), [("ro", "Copie a facturii"), ("ru", "Копия счёта"), ("fa", "رونوشت فاکتور")]
)
def test_invoice_copy_in_the_customers_language(locale: str, title: str) -> None:
    text = pdf_text(_copy(locale))

    for word in title.split():
        assert word in text
    assert "INV-1001" in text


def test_invoice_copy_in_a_language_without_labels_is_in_english() -> None:
    text = pdf_text(_copy("de_DE", customer_name="Jürgen Groß"))

    assert "Copy of invoice" in text and "Jürgen Groß" in text
    assert "Due date 3 March 2027" in text


def test_the_bundled_fonts_and_their_licence_are_there() -> None:
    directory = font_dir()

    assert {path.name for path in directory.iterdir()} == {"DejaVuSans.ttf", "DejaVuSans-Bold.ttf", "LICENSE"}
    assert "Bitstream Vera" in (directory / "LICENSE").read_text(encoding="utf-8")


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_invoice_table_heading_fits_its_column_without_breaking_a_word(language: str) -> None:
    """A column heading may wrap between words, never inside one ("Задолженно-сть")."""
    from dunning.notices.pdf import INVOICE_COLUMNS, labels_in
    from dunning.notices.pdf_layout import _HEADINGS, FONT_FAMILY, Document

    labels = labels_in(language)
    headings = (labels.invoice, labels.due_date, labels.invoice_amount, labels.paid, labels.outstanding)
    pdf = Document(rtl=False, lang=language, created=date(2027, 1, 1), title="t", author="a", footer="f")
    assert _HEADINGS.size_pt is not None
    pdf.set_font(FONT_FAMILY, "B", _HEADINGS.size_pt)
    padding = 2 * 1.5
    for heading, share in zip(headings, INVOICE_COLUMNS, strict=True):
        column = pdf.epw * share / sum(INVOICE_COLUMNS) - padding
        widest = max(heading.split(), key=pdf.get_string_width)
        assert pdf.get_string_width(widest) <= column, f"{language}: {widest!r} does not fit {column:.1f} mm"
