"""PDF letters: the demand letter / final notice attached to those notices, and a one-page invoice copy for
an invoice that has no uploaded document.

Built with fpdf2 (pure Python). Text is set in DejaVu Sans, regular and bold, bundled in fonts/ (copied from
Debian's fonts-dejavu-core 2.37-6; licence in fonts/LICENSE): it covers Latin with the Hungarian (ő, ű) and
Romanian (ș, ț) letters, Cyrillic, and Arabic including the Persian letters. fpdf2 embeds only the glyphs a
document uses, so a letter stays small (30 to 40 KB). Scripts DejaVu lacks (Chinese, Japanese, emoji in a
customer name) come out as blank glyphs: the document is still built.

**Arabic and Persian letters are rendered in their language**, right to left: fpdf2 shapes the text with
HarfBuzz (the uharfbuzz package) and orders mixed runs with the Unicode bidirectional algorithm, so Arabic
letters join, Latin runs (invoice numbers, IBANs, amounts) read left to right inside the right-to-left
lines, a line with no right-to-left letters at all (an address, an IBAN) is laid out left to right but
still aligned right, and tables are mirrored. What text extraction gives back: each Arabic word intact and
in logical order (the font subset maps the shaped glyphs back to the characters), Latin runs and ASCII
digits intact; the order of the runs within a mixed line is visual, and a run of Persian or Arabic-Indic
digits comes out reversed by pypdf (poppler's pdftotext gets it right). Shaping is on for every language,
so an Arabic customer name in an English letter is joined correctly too.

The letter's words are `RenderedNotice.text`, the email's plain-text body already written in the
customer's language, laid out as a letter; the parts that are the email's own are replaced:
- the email signature (everything after a "--" line: "reply to this email") is dropped;
- the heading lines before the salutation (the first paragraph naming the customer) are dropped when they
  are short lines, because the letterhead, date, account and subject line take their place;
- the paragraph listing the invoices (bullet items naming every invoice) becomes the invoice table, with
  charges, totals and the payment deadline, and the paragraph listing the charges (bullet items with every
  charge's amount) goes, the table itemising them; a text with neither gets the table before its last
  paragraph (the sign-off);
- the payment instructions and link are added after the table unless the text already gives them;
- the addressee's postal address (NoticeContext.postal_address) is printed under their name, and the
  text's own recipient block goes with its heading; each invoice's payment terms are in the table, with
  its total and what was paid when the total is known;
- a Letter of Claim's English annex (the Pre-Action Protocol's Information Sheet and Reply Form) starts
  on a new page;
- lines the text template wrapped at 76 characters are joined again, so paragraphs fill the page width;
  short lines (a sign-off, an address) keep their breaks.
Where a heuristic does not match, the text is printed as it is: a paragraph too many rather than one lost.

The labels the PDF adds (table headings, totals, "How to pay", the charge names, a number of days) are in the
text's language, from the same gettext catalog as the email's words (catalog.py: en, ro, ru, hu, ar, fa;
English otherwise), so that a letter names a charge as its email does. Amounts, dates and rates are formatted
by render's own functions, so the table says exactly what the text says: the locale's conventions, the
currency's ISO 4217 minor units, Decimal throughout. The business logo is not drawn: it is a URL, and a letter
is built without network access.

Customer-supplied text (names, references, ids) is only ever text here: control characters and explicit
bidirectional embeddings/overrides are removed (an RLO in a name would otherwise show the amounts after it
reversed), line breaks in single-line fields become spaces, and long words wrap.

Deterministic: the creation date is the send date at 00:00 UTC and the file id is a hash of the content,
so the same input gives the same bytes (with the same fpdf2 version).
"""

from __future__ import annotations

import functools
import itertools
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal
from unicodedata import bidirectional
from urllib.parse import urlsplit

from fpdf import FPDF
from fpdf.fonts import FontFace

from dunning.notices import catalog
from dunning.notices.render import (
    FALLBACK_LANGUAGE,
    PAP_ANNEX_HEADING,
    RTL_LANGUAGES,
    Business,
    ChargeLine,
    NoticeContext,
    NoticeInvoice,
    RenderedNotice,
    format_locale,
    format_long_date,
    format_money,
    format_number,
    format_rate,
    language_of,
)

FONT_FAMILY = "DejaVuSans"
_FONT_FILES = {"": "DejaVuSans.ttf", "B": "DejaVuSans-Bold.ttf"}

# render._reflow's default width: a line break is the wrapper's (to be joined again) when the next word
# would not have fitted on the line.
_TEXT_WIDTH = 76
# Heading lines (title, "Date: ...") are short; a longer line before the salutation is prose: kept.
_HEADING_LINE_MAX = 60
_HEADING_PARAGRAPHS_MAX = 3

_BODY_PT = 10.0
_SMALL_PT = 8.0
_LINE_MM = 4.8
_PARAGRAPH_GAP_MM = 2.0
_GREY = 90

Align = Literal["L", "R", "C"]
# Bidirectional embeddings, overrides and isolates (LRE RLE PDF LRO RLO, LRI RLI FSI PDI). The marks LRM,
# RLM and ALM stay: they only nudge neutral characters and translators use them.
_BIDI_CONTROLS = dict.fromkeys([*range(0x202A, 0x202F), *range(0x2066, 0x206A)])
_LINE_BREAKS = re.compile("\r\n|[\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]")
_CONTROLS = re.compile("[\x00-\x08\x0e-\x1b\x1f\x7f-\x84\x86-\x9f]")
_BREAKABLE_SPACE = re.compile(r"[ \t\n\r\f\v]+")
# A list item; "[ ] " is a box to tick on a form (the Letter of Claim's Reply Form).
_BULLETS = ("- ", "* ", "• ", "– ", "[ ] ")


def font_dir() -> Path:
    """The bundled fonts; FileNotFoundError when a build left the package data out."""
    directory = Path(__file__).parent / "fonts"
    missing = [name for name in _FONT_FILES.values() if not (directory / name).is_file()]
    if missing:
        raise FileNotFoundError(f"the PDF fonts {', '.join(missing)} are missing from {directory}")
    return directory


@dataclass(frozen=True)
class _Labels:
    """The words the PDF adds around the notice text, in one language: from the language's catalog
    (catalog.py), the same one the email's templates read, so that the two say a thing the same way."""

    language: str
    account: str
    invoice: str
    due_date: str
    outstanding: str
    total_due: str
    invoices_total: str
    charges_total: str
    deadline: str
    how_to_pay: str
    pay_online: str
    late_fee: str
    statutory_interest: str
    fixed_compensation: str
    contract_interest: str
    other_charge: str
    annual_rate: str  # "%(rate)s": the locale's percentage, e.g. "10.15%" or "10,15 %"
    monthly_rate: str  # "%(rate)s", as annual_rate
    copy_title: str
    customer: str
    your_reference: str
    issue_date: str
    invoice_amount: str
    paid: str  # paid or credited against the invoice
    payment_terms: str
    payment_reference: str  # "%(invoice)s"
    copy_note: str  # "%(date)s"
    comma: str
    semicolon: str

    def days(self, count: int, fmt: _Format | None = None) -> str:
        """A number of days, in the plural form the language's rules give `count`, and written in the digits
        of `fmt`'s locale (ASCII without one)."""
        words = catalog.translations(self.language).ngettext("%(num)s day", "%(num)s days", count)
        return str(words) % {"num": fmt.number(count) if fmt is not None else count}


def _capitalized(text: str) -> str:
    # The email describes a charge inside a sentence ("fixed compensation for recovery costs"); the PDF's
    # table starts a line with the same words.
    return text[:1].upper() + text[1:]


@functools.cache
def _labels(language: str) -> _Labels:
    """The labels in `language`; English for a language without a catalog."""
    if not catalog.has_catalog(language):
        language = FALLBACK_LANGUAGE
    _ = catalog.translations(language).gettext
    return _Labels(
        language=language,
        account=_("Account"),
        invoice=_("Invoice"),
        due_date=_("Due date"),
        outstanding=_("Outstanding"),
        total_due=_("Total due"),
        invoices_total=_("Invoices outstanding"),
        charges_total=_("Total charges"),
        deadline=_("Payment deadline"),
        how_to_pay=_("How to pay"),
        pay_online=_("Pay online"),
        late_fee=_capitalized(_("late payment fee")),
        statutory_interest=_("Statutory interest"),
        fixed_compensation=_capitalized(_("fixed compensation for recovery costs")),
        contract_interest=_("Contractual interest"),
        other_charge=_("Charge"),
        annual_rate=_("%(rate)s a year"),
        monthly_rate=_("%(rate)s a month"),
        copy_title=_("Copy of invoice"),
        customer=_("Customer"),
        your_reference=_("Your reference"),
        issue_date=_("Issue date"),
        invoice_amount=_("Invoice amount"),
        paid=_("Paid"),
        payment_terms=_("Payment terms"),
        payment_reference=_("Please quote %(invoice)s as the payment reference."),
        copy_note=_(
            "This copy was produced from our records on %(date)s. It does not replace the original invoice."
        ),
        comma=_(", "),
        semicolon=_("; "),
    )


class _LabelsByLanguage(Mapping[str, _Labels]):
    """The labels of each language that has a catalog, by language (what packets reads)."""

    def __getitem__(self, language: str) -> _Labels:
        if not catalog.has_catalog(language):
            raise KeyError(language)
        return _labels(language)

    def __iter__(self) -> Iterator[str]:
        return iter(catalog.languages())

    def __len__(self) -> int:
        return len(catalog.languages())


_LABELS: Mapping[str, _Labels] = _LabelsByLanguage()


# --- text hygiene -----------------------------------------------------------------------------------------


def _clean_block(text: str) -> str:
    """Multi-line text with its line breaks as "\\n" and nothing that could steer the layout."""
    text = _LINE_BREAKS.sub("\n", text).replace("\t", " ")
    return _CONTROLS.sub("", text).translate(_BIDI_CONTROLS)


def _clean(text: str) -> str:
    """A single-line field (name, id, reference) on one line, whatever it contains. Only ASCII whitespace
    is collapsed: the no-break spaces Babel puts inside amounts and dates keep them on one line."""
    return _BREAKABLE_SPACE.sub(" ", _clean_block(text)).strip(" ")


def _https(url: str | None) -> str | None:
    # Like the email, the PDF links only to a plain https:// address: no javascript:, file: or mailto: tricks.
    cleaned = _clean(url or "")
    parts = urlsplit(cleaned)
    return cleaned if parts.scheme == "https" and parts.netloc and " " not in cleaned else None


class _Format:
    """Amounts, dates and rates written as the notice text writes them (render's Babel formatting)."""

    def __init__(self, locale: str, language: str) -> None:
        self.locale = format_locale(locale, language)

    def money(self, value: Decimal, currency: str) -> str:
        return format_money(value, currency, self.locale)

    def date(self, value: date) -> str:
        return format_long_date(value, self.locale)

    def rate(self, value: Decimal | int | str) -> str:
        return format_rate(value, self.locale)

    def number(self, value: int) -> str:
        return format_number(value, self.locale)


# --- the letter text ------------------------------------------------------------------------------------


def _word_pattern(word: str) -> re.Pattern[str]:
    return re.compile(rf"(?<!\w){re.escape(word)}(?!\w)")


def _paragraphs(text: str) -> list[list[str]]:
    paragraphs: list[list[str]] = [[]]
    for raw in _clean_block(text).split("\n"):
        line = raw.rstrip()
        if line == "--":
            break  # the email signature: "reply to this email" has no place on paper
        if line.strip():
            paragraphs[-1].append(line)
        elif paragraphs[-1]:
            paragraphs.append([])
    return [p for p in paragraphs if p]


def _is_bullet(line: str) -> bool:
    return line.lstrip().startswith(_BULLETS)


def _is_indented(line: str) -> bool:
    return line.startswith(" ") and not _is_bullet(line)


def _join_wrapped(lines: Sequence[str]) -> str:
    """The paragraph with the text wrapper's breaks undone and the author's kept."""
    joined = lines[0]
    in_item = _is_bullet(lines[0])
    for previous, line in itertools.pairwise(lines):
        # A list item too long for its line goes on indented below it (a hanging indent).
        continued = in_item and _is_indented(line)
        first_word = line.split(" ", 1)[0]
        if first_word[:1].isdigit():
            # A date the wrapper kept whole ("2 April 2027", "2027. május 2."): its words moved together.
            first_word = " ".join(line.split(" ")[:3])
        wrapped = continued or (len(previous) + 1 + len(first_word) > _TEXT_WIDTH and not _is_bullet(line))
        joined += f" {line.strip()}" if wrapped else f"\n{line}"
        in_item = _is_bullet(line) or continued
    return joined


def _list_items(paragraph: Sequence[str]) -> str:
    """The paragraph's bullet items with their continuation lines, one item a line."""
    items: list[str] = []
    in_item = False
    for line in paragraph:
        if _is_bullet(line):
            items.append(line.strip())
        elif in_item and _is_indented(line):
            items[-1] += f" {line.strip()}"
            continue
        in_item = _is_bullet(line)
    return "\n".join(items)


def _without_heading(
    paragraphs: list[list[str]], customer_name: str, address: Sequence[str] = ()
) -> list[list[str]]:
    name = _clean(customer_name)
    if not name:
        return paragraphs
    pattern = _word_pattern(name)
    # A letter's recipient block (the name on a line of its own, then the postal address) is heading: the
    # PDF prints the address itself, under the name.
    block = {name, *(_clean(line) for line in address)}
    for index, paragraph in enumerate(paragraphs[: _HEADING_PARAGRAPHS_MAX + 2]):
        if paragraph[0].strip() == name:
            continue
        if pattern.search(paragraph[0]):
            heading = paragraphs[:index]
            if all(len(line) <= _HEADING_LINE_MAX or line.strip() in block for p in heading for line in p):
                return paragraphs[index:]
            return paragraphs
    return paragraphs


def _list_index(
    paragraphs: list[list[str]], items: Sequence[re.Pattern[str]], skip: int | None
) -> int | None:
    """The first paragraph whose bullet lines name every item."""
    if not items:
        return None
    for index, paragraph in enumerate(paragraphs):
        bullets = _list_items(paragraph)
        if index != skip and bullets and all(item.search(bullets) for item in items):
            return index
    return None


def _letter_text(context: NoticeContext, text: str, fmt: _Format) -> tuple[list[str], list[str]]:
    """The letter's paragraphs before and after the invoice table."""
    paragraphs = _without_heading(_paragraphs(text), context.customer_name, context.postal_address)
    invoice_ids = [_word_pattern(_clean(invoice.invoice_id)) for invoice in context.invoices]
    invoices = _list_index(paragraphs, invoice_ids, skip=None)
    amounts = [re.compile(re.escape(fmt.money(c.amount, c.currency))) for c in context.charges]
    charges = _list_index(paragraphs, amounts, skip=invoices)
    # The table takes the place of the invoice list, else of the charges list, else goes before the
    # sign-off; the lists it replaces go.
    if invoices is not None:
        at = invoices
    elif charges is not None:
        at = charges
    else:
        at = len(paragraphs) - 1 if len(paragraphs) > 1 else len(paragraphs)
    replaced = {invoices, charges}
    before = [_join_wrapped(p) for i, p in enumerate(paragraphs[:at]) if i not in replaced]
    after = [_join_wrapped(p) for i, p in enumerate(paragraphs[at:], start=at) if i not in replaced]
    return before, after


# --- the document -------------------------------------------------------------------------------------


class _Document(FPDF):
    def __init__(self, *, rtl: bool, lang: str, created: date, title: str, author: str, footer: str) -> None:
        super().__init__(orientation="portrait", unit="mm", format="A4")
        self.rtl = rtl
        self._footer = footer
        fonts = font_dir()
        for style, name in _FONT_FILES.items():
            self.add_font(FONT_FAMILY, style, str(fonts / name))
        self.set_margins(20, 18, 20)
        self.set_auto_page_break(True, margin=22)
        self.directed()
        self.set_creation_date(datetime.combine(created, time(0), tzinfo=UTC))
        self.set_title(_clean(title))
        self.set_author(_clean(author))
        self.set_creator("dunning")
        self.set_lang(lang)
        self.set_font(FONT_FAMILY, size=_BODY_PT)

    @property
    def start(self) -> Align:
        return "R" if self.rtl else "L"

    @property
    def end(self) -> Align:
        return "L" if self.rtl else "R"

    def header(self) -> None:
        # The page-count alias ("{nb}") is on only while the footer's page number is drawn: elsewhere a
        # customer's text that happens to contain "{nb}" would be replaced by the number of pages.
        self.alias_nb_pages(None)  # type: ignore[arg-type]  # None turns it off (documented, not annotated)

    def footer(self) -> None:
        self.alias_nb_pages(None)  # type: ignore[arg-type]
        self.set_font(FONT_FAMILY, size=_SMALL_PT)
        self.set_text_color(_GREY)
        number_width = 20.0
        text_width = self.epw - number_width
        self.set_xy(self.l_margin + (number_width if self.rtl else 0), -15)
        self.directed(self._footer)
        self.multi_cell(text_width, 4, self._footer, align=self.start, max_line_height=4)
        self.set_xy(self.l_margin if self.rtl else self.l_margin + text_width, -15)
        # Left on: output() draws the last footer and only then substitutes the alias, if still set.
        self.alias_nb_pages()
        self.directed("")
        self.cell(number_width, 4, f"{self.page_no()}/{{nb}}", align=self.end)
        self.set_text_color(0)
        self.set_font(FONT_FAMILY, size=_BODY_PT)

    def directed(self, text: str | None = None) -> None:
        """Lay out `text` right to left when the document is, unless it has no right-to-left letters: an
        address or an IBAN on its own line reads left to right (like dir=auto), still aligned right."""
        rtl = self.rtl and (text is None or any(bidirectional(c) in ("R", "AL") for c in text))
        self.set_text_shaping(use_shaping_engine=True, direction="rtl" if rtl else "ltr")

    def paragraph(
        self, text: str, *, size: float = _BODY_PT, bold: bool = False, align: Align | None = None
    ) -> None:
        self.directed(text)
        self.set_font(FONT_FAMILY, "B" if bold else "", size)
        self.multi_cell(
            0, size * _LINE_MM / _BODY_PT, text, align=align or self.start, new_x="LMARGIN", new_y="NEXT"
        )
        self.set_font(FONT_FAMILY, "", _BODY_PT)

    def gap(self, times: float = 1) -> None:
        self.ln(_PARAGRAPH_GAP_MM * times)

    def letterhead(self, business: Business) -> None:
        self.paragraph(_clean(business.name), size=15, bold=True)
        self.set_text_color(_GREY)
        for line in (_clean(line) for line in (*business.address, business.reply_to or "")):
            if line:
                self.paragraph(line, size=9)
        self.set_text_color(0)
        self.ln(2)
        self.set_draw_color(160)
        self.line(self.l_margin, self.get_y(), self.w - self.r_margin, self.get_y())
        self.set_draw_color(0)
        self.ln(5)

    def payment_block(self, business: Business, labels: _Labels, already_said: str = "") -> None:
        lines = [line for line in (_clean(line) for line in business.payment_instructions) if line]
        link = _https(business.payment_link)
        if not lines and not link:
            return
        if all(line in already_said for line in lines) and (not link or link in already_said):
            return  # the notice text gives them already
        self.gap()
        self.paragraph(labels.how_to_pay, bold=True)
        for line in lines:
            self.paragraph(line)
        if link:
            self.directed(labels.pay_online)
            self.set_text_color(0, 0, 160)
            self.multi_cell(
                0, _LINE_MM, f"{labels.pay_online}: {link}", align=self.start, link=link,
                new_x="LMARGIN", new_y="NEXT",
            )  # fmt: skip
            self.set_text_color(0)


@dataclass(frozen=True)
class _Cell:
    text: str
    align: Align = "L"
    colspan: int = 1
    bold: bool = False


_BOLD = FontFace(emphasis="BOLD")
_HEADINGS = FontFace(emphasis="BOLD", fill_color=(235, 235, 235))
_MIRRORED: dict[Align, Align] = {"L": "R", "R": "L", "C": "C"}


def _table(
    pdf: _Document, widths: Sequence[float], rows: Sequence[Sequence[_Cell]], *, headings: bool
) -> None:
    pdf.directed()  # the cells mix labels and values: the document's direction
    with pdf.table(
        col_widths=tuple(reversed(widths)) if pdf.rtl else tuple(widths),
        first_row_as_headings=headings,
        headings_style=_HEADINGS,
        borders_layout="HORIZONTAL_LINES",
        line_height=_LINE_MM,
        padding=(1.0, 1.5),
        text_align="LEFT",
        width=pdf.epw,
    ) as table:
        for cells in rows:
            row = table.row()
            # fpdf2 lays a table out left to right: a right-to-left reader gets it mirrored.
            ordered = [replace(c, align=_MIRRORED[c.align]) for c in reversed(cells)] if pdf.rtl else cells
            for cell in ordered:
                row.cell(
                    cell.text, align=cell.align, colspan=cell.colspan, style=_BOLD if cell.bold else None
                )


def _charge_text(line: ChargeLine, labels: _Labels, fmt: _Format) -> str:
    label = {
        "late_fee": labels.late_fee,
        "statutory_interest": labels.statutory_interest,
        "contract_interest": labels.contract_interest,
        "fixed_compensation": labels.fixed_compensation,
    }.get(line.kind, labels.other_charge)
    if line.invoice_id:
        label += f"{labels.comma}{_clean(line.invoice_id)}"
    # The details a reader checks the figure with (see ChargeLine); anything else is not for the reader.
    details: dict[str, Any] = dict(line.details)
    parts: list[str] = []
    if line.kind == "contract_interest":
        # The rate as the contract states it, a month or a year (render checked "per").
        rate, period = details.get("stated_rate"), details.get("per")
        period_text = labels.monthly_rate if period == "month" else labels.annual_rate
    else:
        rate = details.get("rate")
        period_text = labels.annual_rate if line.kind == "statutory_interest" else "%(rate)s"
    if rate is not None:
        rate_text = fmt.rate(rate) if isinstance(rate, Decimal | int | str) else _clean(str(rate))
        if labels.language in RTL_LANGUAGES:
            # A left-to-right mark keeps the number and its percent sign together ("1.5%") when the
            # language's rate phrase puts the rate after a right-to-left word ("ماهانه 1.5%"); Babel marks
            # amounts the same way.
            rate_text = f"\u200e{rate_text}"
        parts.append(period_text % {"rate": rate_text})
    if (days := details.get("days")) is not None:
        parts.append(labels.days(int(days), fmt) if str(days).isdigit() else _clean(str(days)))
    start, end = details.get("from"), details.get("to")
    if isinstance(start, date) and isinstance(end, date):
        parts.append(f"{fmt.date(start)} – {fmt.date(end)}")
    return f"{label} ({labels.semicolon.join(parts)})" if parts else label


def _with_amounts(context: NoticeContext) -> bool:
    """Whether the invoice table has the total and paid columns: when any invoice's total is known."""
    return any(invoice.amount is not None for invoice in context.invoices)


def _invoice_rows(context: NoticeContext, labels: _Labels, fmt: _Format) -> list[list[_Cell]]:
    """Each invoice (with its payment terms when known) and, when the totals are known, its total and what
    was paid; what is outstanding; then the charges, the total due and the deadline."""
    amounts = _with_amounts(context)
    rows = [[_Cell(labels.invoice), _Cell(labels.due_date)]]
    if amounts:
        rows[0] += [_Cell(labels.invoice_amount, "R"), _Cell(labels.paid, "R")]
    rows[0].append(_Cell(labels.outstanding, "R"))
    for invoice in context.invoices:
        name = _clean(invoice.invoice_id)
        if reference := _clean(invoice.reference or ""):
            name += f" ({reference})"
        if terms := _clean(invoice.terms or ""):
            name += f"\n{labels.payment_terms}: {terms}"
        row = [_Cell(name), _Cell(fmt.date(invoice.due_on))]
        if amounts:
            known = invoice.amount is not None
            row += [
                _Cell(fmt.money(invoice.amount, invoice.currency) if invoice.amount is not None else "", "R"),
                _Cell(fmt.money(invoice.paid, invoice.currency) if known else "", "R"),
            ]
        row.append(_Cell(fmt.money(invoice.outstanding, invoice.currency), "R"))
        rows.append(row)
    span = len(rows[0]) - 1

    def total(label: str, amount: str, *, bold: bool = False) -> list[_Cell]:
        return [_Cell(label, colspan=span, bold=bold), _Cell(amount, "R", bold=bold)]

    currency = context.currency
    if context.charges:
        rows.append(total(labels.invoices_total, fmt.money(context.total_due, currency)))
        for charge in context.charges:
            rows.append(total(_charge_text(charge, labels, fmt), fmt.money(charge.amount, charge.currency)))
        rows.append(total(labels.charges_total, fmt.money(context.total_charges, currency)))
    rows.append(total(labels.total_due, fmt.money(context.grand_total, currency), bold=True))
    if context.deadline is not None:
        rows.append(total(labels.deadline, fmt.date(context.deadline), bold=True))
    return rows


def _footer_text(business: Business, labels: _Labels, account_id: str) -> str:
    return f"{_clean(business.name)} · {labels.account}: {_clean(account_id)}"


def letter_pdf(context: NoticeContext, rendered: RenderedNotice) -> bytes:
    """The demand letter / final notice as an A4 PDF (one or two pages for a usual number of invoices):
    letterhead, customer and account, date, the subject, the notice text as a letter with the invoice
    table (charges, totals, deadline) in place of its invoice list, how to pay, the sign-off."""
    labels = _labels(rendered.lang)
    fmt = _Format(context.locale, rendered.lang)
    pdf = _Document(
        rtl=rendered.direction == "rtl",
        lang=rendered.lang,
        created=context.sent_on,
        title=rendered.subject,
        author=context.business.name,
        footer=_footer_text(context.business, labels, context.account_id),
    )
    pdf.add_page()
    pdf.letterhead(context.business)
    # The addressee: name and postal address (when known) as on an envelope, then the account.
    pdf.paragraph(_clean(context.customer_name), bold=True)
    for line in context.postal_address:
        if cleaned := _clean(line):
            pdf.paragraph(cleaned)
    pdf.paragraph(f"{labels.account}: {_clean(context.account_id)}")
    pdf.gap()
    pdf.paragraph(fmt.date(context.sent_on), align=pdf.end)
    pdf.gap()
    pdf.paragraph(_clean(rendered.subject), size=11, bold=True)
    pdf.gap(2)

    before, after = _letter_text(context, rendered.text, fmt)
    for text in before:
        pdf.paragraph(text)
        pdf.gap()
    widths = (28, 18, 18, 18, 18) if _with_amounts(context) else (45, 25, 30)
    _table(pdf, widths, _invoice_rows(context, labels, fmt), headings=True)
    pdf.payment_block(context.business, labels, already_said=_clean_block(rendered.text))
    pdf.gap(2)
    for text in after:
        if context.pre_action_protocol and text.startswith(PAP_ANNEX_HEADING):
            # The Letter of Claim's annex (Information Sheet and Reply Form) starts on a page of its own.
            pdf.add_page()
            heading, _, rest = text.partition("\n")
            pdf.paragraph(heading, size=11, bold=True, align="L")
            if rest.strip():
                pdf.paragraph(rest)
            pdf.gap()
            continue
        pdf.paragraph(text)
        pdf.gap()
    return bytes(pdf.output())


def invoice_copy_pdf(
    *,
    business: Business,
    customer_name: str,
    account_id: str,
    invoice: NoticeInvoice,
    amount: Decimal,
    issued_on: date,
    locale: str,
) -> bytes:
    """A one-page copy of an invoice that has no uploaded document, produced on `issued_on` (the notice's
    send date) from the ledger: amount, dates, what is outstanding and how to pay. In the customer's
    language where the labels exist (en, ro, ru, hu, ar, fa), English otherwise."""
    language = language_of(locale)
    if not catalog.has_catalog(language):
        language = FALLBACK_LANGUAGE
    labels = _labels(language)
    fmt = _Format(locale, language)
    invoice_id = _clean(invoice.invoice_id)
    pdf = _Document(
        rtl=language in RTL_LANGUAGES,
        lang=language,
        created=issued_on,
        title=f"{labels.copy_title} {invoice_id}",
        author=business.name,
        footer=_footer_text(business, labels, account_id),
    )
    pdf.add_page()
    pdf.letterhead(business)
    pdf.paragraph(labels.copy_title, size=16, bold=True)
    pdf.gap(2)

    fields = [(labels.invoice, invoice_id)]
    if reference := _clean(invoice.reference or ""):
        fields.append((labels.your_reference, reference))
    fields += [
        (labels.customer, _clean(customer_name)),
        (labels.account, _clean(account_id)),
        (labels.issue_date, fmt.date(invoice.issued_on)),
        (labels.due_date, fmt.date(invoice.due_on)),
        (labels.invoice_amount, fmt.money(amount, invoice.currency)),
    ]
    rows = [[_Cell(label), _Cell(value)] for label, value in fields]
    outstanding = fmt.money(invoice.outstanding, invoice.currency)
    rows.append([_Cell(labels.outstanding, bold=True), _Cell(outstanding, bold=True)])
    _table(pdf, (35, 65), rows, headings=False)

    pdf.gap(2)
    pdf.paragraph(labels.payment_reference % {"invoice": invoice_id})
    pdf.payment_block(business, labels)
    pdf.gap(3)
    pdf.set_text_color(_GREY)
    pdf.paragraph(labels.copy_note % {"date": fmt.date(issued_on)}, size=9)
    pdf.set_text_color(0)
    return bytes(pdf.output())
