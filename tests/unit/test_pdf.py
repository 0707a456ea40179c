"""PDF letters: what a reader (and a text extractor) finds in the demand letter and the invoice copy, in
every script the notices are written in, whatever the customer's data holds."""

from __future__ import annotations

import io
import re
from dataclasses import replace
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from pypdf import PdfReader

from dunning.notices import render_notice, shipped_template_dir
from dunning.notices.pdf import font_dir, invoice_copy_pdf, letter_pdf
from dunning.notices.render import (
    Business,
    ChargeLine,
    NoticeContext,
    NoticeInvoice,
    RenderedNotice,
    format_locale,
    format_long_date,
    format_money,
)
from tests.unit.test_golden_notices import CHARGES as GOLDEN_CHARGES
from tests.unit.test_golden_notices import sample as golden_sample
from tests.unit.test_notices import without_identifiers

INVOICES = (
    NoticeInvoice(
        invoice_id="INV-1001",
        reference="PO-77",
        issued_on=date(2027, 2, 1),
        due_on=date(2027, 3, 3),
        outstanding=Decimal("1200"),
        currency="EUR",
        days_overdue=12,
    ),
    NoticeInvoice(
        invoice_id="INV-1002",
        reference=None,
        issued_on=date(2027, 2, 10),
        due_on=date(2027, 3, 12),
        outstanding=Decimal("80.5"),
        currency="EUR",
        days_overdue=3,
    ),
)
BUSINESS = Business(
    name="Example Trading Ltd",
    address=("12 Harbour Street", "Bristol BS1 4AA", "United Kingdom"),
    reply_to="ar@example.com",
    payment_instructions=("Bank transfer to Example Trading Ltd", "IBAN GB33 BUKB 2020 1555 5555 55"),
    payment_link="https://pay.example.com/acc-9",
)
CONTEXT = NoticeContext(
    stage="demand_letter",
    locale="en",
    customer_name="Ana Popescu",
    account_id="ACC-9",
    invoices=INVOICES,
    total_due=Decimal("1280.50"),
    currency="EUR",
    business=BUSINESS,
    sent_on=date(2027, 3, 15),
    deadline=date(2027, 3, 29),
)
CHARGES = (
    ChargeLine(kind="late_fee", invoice_id="INV-1001", amount=Decimal("40"), currency="EUR"),
    ChargeLine(
        kind="statutory_interest",
        invoice_id="INV-1001",
        amount=Decimal("10.34"),
        currency="EUR",
        details=(
            ("rate", Decimal("10.15")),
            ("days", 31),
            ("from", date(2027, 3, 4)),
            ("to", date(2027, 4, 3)),
        ),
    ),
)
MAX_BYTES = 200 * 1024


def _pages(pdf: bytes) -> list[str]:
    return [page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages]


def _flat(text: str) -> str:
    """Text with every kind of space as one plain space and the invisible direction marks gone: the
    extractor and Babel (no-break spaces inside amounts, RLM before Arabic amounts) differ only there."""
    text = re.sub("[\u200e\u200f\u061c]", "", text)
    return " ".join(re.split(r"[\s\u00a0\u202f]+", text)).strip()


def _text(pdf: bytes) -> str:
    return _flat("\n".join(_pages(pdf)))


def _money(value: Decimal, locale: str, language: str) -> str:
    return _flat(format_money(value, "EUR", format_locale(locale, language)))


def _long_date(value: date, locale: str, language: str) -> str:
    return _flat(format_long_date(value, format_locale(locale, language)))


def _english(context: NoticeContext = CONTEXT) -> RenderedNotice:
    return render_notice(context, [shipped_template_dir()])


def _assert_small_pdf(pdf: bytes, *, pages: int = 2) -> None:
    assert pdf.startswith(b"%PDF-")
    assert len(pdf) < MAX_BYTES  # the fonts are embedded as subsets of the glyphs used
    assert 1 <= len(_pages(pdf)) <= pages


@pytest.mark.parametrize("stage", ["demand_letter", "final_notice"])
def test_english_letter_names_the_customer_the_amount_due_and_the_deadline(stage: str) -> None:
    context = replace(CONTEXT, stage=stage)
    pdf = letter_pdf(context, _english(context))

    _assert_small_pdf(pdf)
    text = _text(pdf)
    assert "Ana Popescu" in text
    assert "ACC-9" in text
    assert _money(Decimal("1280.50"), "en", "en") == "€1,280.50"
    assert "Total due €1,280.50" in text
    assert "Payment deadline 29 March 2027" in text
    assert "INV-1001 (PO-77) 3 March 2027 €1,200.00" in text
    assert "Example Trading Ltd" in text and "IBAN GB33 BUKB 2020 1555 5555 55" in text


def test_the_letter_replaces_the_emails_own_parts() -> None:
    rendered = _english()
    text = _text(letter_pdf(CONTEXT, rendered))

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

    text = _text(pdf)
    assert "Invoices outstanding €1,280.50" in text
    assert "Late payment fee, INV-1001 €40.00" in text
    assert "Statutory interest, INV-1001 (10.15% a year; 31 days; 4 March 2027 – 3 April 2027) €10.34" in text
    assert "Total charges €50.34" in text
    assert "Total due €1,330.84" in text


def test_the_texts_invoice_and_charges_lists_give_way_to_the_table() -> None:
    context = replace(CONTEXT, charges=CHARGES)
    rendered = RenderedNotice(
        subject="Demand",
        text=(
            "Dear Ana Popescu,\n\nPlease pay.\n\n"
            "Account ACC-9\n- Invoice INV-1001: €1,200.00 owed\n- Invoice INV-1002: €80.50 owed\n\n"
            "Charges\n- Late fee: €40.00\n"
            "- Statutory interest at 10.15% a year for 31 days (4 March\n  2027 to 3 April 2027): €10.34\n"
            "Total: €50.34\n\n"
            "- A list that is not about the invoices stays.\n\n"
            "Kind regards,\nAccounts team\n"
        ),
        html="",
        lang="en",
        direction="ltr",
    )
    text = _text(letter_pdf(context, rendered))

    assert "owed" not in text and "Late fee" not in text and "at 10.15% a year" not in text
    assert "Late payment fee, INV-1001 €40.00" in text
    assert text.index("Please pay.") < text.index("Total due €1,330.84") < text.index("A list that is not")


def test_a_text_without_an_invoice_list_gets_the_table_before_its_sign_off() -> None:
    rendered = RenderedNotice(
        subject="Payment demand",
        text="Dear Ana Popescu,\n\nPlease pay what you owe.\n\nKind regards,\nAccounts team\n",
        html="",
        lang="en",
        direction="ltr",
    )
    text = _text(letter_pdf(CONTEXT, rendered))

    assert text.index("Please pay what you owe.") < text.index("Total due") < text.index("Kind regards")


def test_lines_the_text_template_wrapped_are_joined_and_short_lines_kept() -> None:
    prose = (
        "We formally demand payment of the total outstanding by the deadline below, as\nagreed in our terms."
    )
    rendered = RenderedNotice(
        subject="Demand",
        text=f"Dear Ana Popescu,\n\n{prose}\n\nKind regards,\nAccounts team\n",
        html="",
        lang="en",
        direction="ltr",
    )
    lines = "\n".join(_pages(letter_pdf(CONTEXT, rendered))).splitlines()

    # The template's break after "as" is gone: the paragraph runs to the page width.
    assert any("the deadline below, as agreed in our" in line for line in lines)
    assert "Kind regards," in lines and "Accounts team" in lines


RUSSIAN = RenderedNotice(
    subject="Официальное требование об оплате",
    text=(
        "ОФИЦИАЛЬНОЕ ТРЕБОВАНИЕ ОБ ОПЛАТЕ\n\n"
        "Уважаемая Анна Сергеевна Попова,\n\n"
        "Счета, указанные ниже, остаются неоплаченными. Просим погасить задолженность\n"
        "до указанного срока.\n\n"
        "С уважением,\nБухгалтерия\n"
    ),
    html="",
    lang="ru",
    direction="ltr",
)
ROMANIAN = RenderedNotice(
    subject="Somație de plată",
    text=(
        "Stimate domnule Ștefan Țăranu,\n\n"
        "Facturile de mai jos sunt încă neachitate. Vă rugăm să achitați suma datorată\n"
        "până la termenul de plată; dacă ați plătit deja, vă mulțumim.\n\n"
        "Cu stimă,\nDepartamentul financiar\n"
    ),
    html="",
    lang="ro",
    direction="ltr",
)
HUNGARIAN = RenderedNotice(
    subject="Fizetési felszólítás",
    text=(
        "Tisztelt Kővári Győző Úr!\n\n"
        "Az alábbi számlák kiegyenlítése még nem történt meg. Kérjük, fizesse meg a\n"
        "tartozást a megadott határidőig; ha már fizetett, köszönjük.\n\n"
        "Üdvözlettel:\nPénzügyi osztály\n"
    ),
    html="",
    lang="hu",
    direction="ltr",
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
    text = _text(pdf)
    assert customer in text
    for word in words:
        assert word in text
    language = rendered.lang
    assert _money(Decimal("1280.50"), locale, language) in text
    assert _long_date(date(2027, 3, 29), locale, language) in text
    # Romanian's comma-below letters are not swapped for the look-alike cedilla ones.
    assert not set("şţŞŢ") & set(text)


ARABIC = RenderedNotice(
    subject="مطالبة رسمية بالسداد",
    text=(
        "السيد أحمد خليل المحترم،\n\n"
        "نطالبكم رسمياً بسداد إجمالي المبلغ المستحق قبل الموعد المحدد أدناه.\n\n"
        "- الفاتورة INV-1001 (مرجعكم PO-77)\n"
        "- الفاتورة INV-1002\n\n"
        "مع خالص التحية،\nفريق الحسابات\n"
    ),
    html="",
    lang="ar",
    direction="rtl",
)
PERSIAN = RenderedNotice(
    subject="اخطار رسمی پرداخت",
    text=(
        "جناب آقای محمد رضایی،\n\n"
        "لطفاً مانده بدهی خود را تا مهلت تعیین\u200cشده پرداخت کنید.\n\n"
        "با احترام،\nواحد حسابداری\n"
    ),
    html="",
    lang="fa",
    direction="rtl",
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
    text = _text(pdf)
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
    # The Arabic list became the table, as the English one does.
    assert "مرجعكم PO-77" not in text
    # Not the English fallback.
    assert "Total due" not in text


def test_a_persian_letter_writes_every_number_in_persian_digits() -> None:
    """Amounts, dates, rates and counts of days in Extended Arabic-Indic digits, as in the email; what the
    customer or the business wrote (ids, references, addresses, bank details, links) stays as written, and
    so does the page number (fpdf2 writes the page count in ASCII digits)."""
    context = replace(golden_sample("fa", "demand_letter"), charges=GOLDEN_CHARGES)
    rendered = render_notice(context, [shipped_template_dir()])
    text = _text(letter_pdf(context, rendered))

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
    rendered = RenderedNotice(
        subject="Demand\u202e for payment",
        text=f"Dear {name},\n\nPlease pay.\n\nKind regards,\nAccounts team\n",
        html="",
        lang="en",
        direction="ltr",
    )
    pdf = letter_pdf(context, rendered)

    _assert_small_pdf(pdf)
    text = _text(pdf)
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
    pages = _pages(pdf)

    assert len(pages) >= 2
    for number, page in enumerate(pages, start=1):
        assert _flat(page).endswith(f"ACC-9 {number}/{len(pages)}")
    assert "INV-2059" in _text(pdf)


def test_only_an_https_payment_link_is_shown() -> None:
    business = replace(BUSINESS, payment_instructions=(), payment_link="javascript:alert(1)")
    rendered = RenderedNotice(
        subject="Demand", text="Dear Ana Popescu,\n\nPlease pay.\n", html="", lang="en", direction="ltr"
    )
    text = _text(letter_pdf(replace(CONTEXT, business=business), rendered))

    assert "javascript" not in text
    assert "How to pay" not in text


def test_payment_instructions_missing_from_the_text_are_added() -> None:
    rendered = RenderedNotice(
        subject="Demand", text="Dear Ana Popescu,\n\nPlease pay.\n", html="", lang="en", direction="ltr"
    )
    text = _text(letter_pdf(CONTEXT, rendered))

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
    text = _text(pdf)
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
    text = _text(_copy(locale))

    for word in title.split():
        assert word in text
    assert "INV-1001" in text


def test_invoice_copy_in_a_language_without_labels_is_in_english() -> None:
    text = _text(_copy("de_DE", customer_name="Jürgen Groß"))

    assert "Copy of invoice" in text and "Jürgen Groß" in text
    assert "Due date 3 March 2027" in text


def test_the_bundled_fonts_and_their_licence_are_there() -> None:
    directory = font_dir()

    assert {path.name for path in directory.iterdir()} == {"DejaVuSans.ttf", "DejaVuSans-Bold.ttf", "LICENSE"}
    assert "Bitstream Vera" in (directory / "LICENSE").read_text(encoding="utf-8")
