"""The PDF fonts are parsed once per process (pdf_layout._parsed_font) and every document still gets exactly
what fpdf2's own add_font gives it: the same bytes, its own subset of the glyphs it uses."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from fpdf.fonts import TTFFont

from dunning.notices import pdf_layout, render_notice
from dunning.notices.pdf import invoice_copy_pdf, letter_pdf
from dunning.notices.pdf_layout import DOCUMENT_FONT_STATE, FONT_FAMILY, SHARED_FONT_STATE, Document
from tests.support.notices import BUSINESS, INVOICES, LANGUAGES, LETTERS, LOCALES, SHIPPED, sample


def letters() -> list[bytes]:
    rendered = [sample(language, stage) for language in LANGUAGES for stage in LETTERS]
    return [letter_pdf(context, render_notice(context, [SHIPPED])) for context in rendered]


def copies() -> list[bytes]:
    return [
        invoice_copy_pdf(
            business=BUSINESS,
            customer_name=name,
            account_id="ACC-9",
            invoice=INVOICES[0],
            amount=Decimal("1500"),
            issued_on=date(2027, 3, 15),
            locale=LOCALES[language],
        )
        # A name in a script DejaVu lacks: the glyphs missing from the font are handled alike.
        for language, name in (("en", "Ana Popescu 王小明"), ("fa", "شرکت نمونه"), ("ru", "ООО «Ромашка»"))
    ]


def with_fpdf2s_add_font(monkeypatch: pytest.MonkeyPatch) -> None:
    def add_font(document: Document, style: str, path: Path) -> None:
        document.add_font(FONT_FAMILY, style, str(path))

    monkeypatch.setattr(Document, "_add_parsed_font", add_font)


def test_every_document_is_byte_for_byte_what_fpdf2s_add_font_makes(monkeypatch: pytest.MonkeyPatch) -> None:
    shared = letters() + copies()
    with_fpdf2s_add_font(monkeypatch)
    assert shared == letters() + copies()


def test_a_document_gets_the_glyphs_it_uses_whatever_was_made_before_or_at_the_same_time() -> None:
    english, arabic = sample("en", "demand_letter"), sample("ar", "final_notice")
    alone = letter_pdf(english, render_notice(english, [SHIPPED]))
    letter_pdf(arabic, render_notice(arabic, [SHIPPED]))
    assert letter_pdf(english, render_notice(english, [SHIPPED])) == alone

    def document(text: str) -> Document:
        pdf = Document(rtl=False, lang="en", created=date(2027, 1, 1), title="t", author="a", footer="f")
        pdf.add_page()
        pdf.paragraph(text)
        return pdf

    first, second = document("Ana Popescu"), document("Задолженность ő ű ș ț")
    first.paragraph("paid", bold=True)
    second.paragraph("Задолженность", bold=True)  # laid out while the first is still open
    together = (bytes(second.output()), bytes(first.output()))
    one, two = document("Ana Popescu"), document("Задолженность ő ű ș ț")
    one.paragraph("paid", bold=True)
    assert bytes(one.output()) == together[1]
    two.paragraph("Задолженность", bold=True)
    assert bytes(two.output()) == together[0]


def test_the_fonts_are_parsed_once_per_process(monkeypatch: pytest.MonkeyPatch) -> None:
    letters()  # whatever ran before, the fonts are parsed by now
    parsed = 0
    init = TTFFont.__init__

    def counted(font: TTFFont, *args: Any, **kwargs: Any) -> None:
        nonlocal parsed
        parsed += 1
        init(font, *args, **kwargs)

    monkeypatch.setattr(TTFFont, "__init__", counted)
    letters()
    copies()
    assert parsed == 0
    assert pdf_layout._parsed_font.cache_info().currsize == 2  # regular and bold


def test_every_attribute_of_fpdf2s_font_is_known_to_be_per_document_or_shared() -> None:
    """A new fpdf2 may add to its TTFFont what it changes per document: a copy would then share it."""
    assert not DOCUMENT_FONT_STATE & SHARED_FONT_STATE
    assert set(TTFFont.__slots__) == DOCUMENT_FONT_STATE | SHARED_FONT_STATE, (
        "fpdf2's TTFFont changed (pyproject.toml pins fpdf2): sort each attribute into "
        "pdf_layout.DOCUMENT_FONT_STATE (changed while a document is made) or SHARED_FONT_STATE (read only)"
    )
