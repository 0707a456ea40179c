"""The layout every PDF of dunning shares (the letters and invoice copies of pdf.py, the case summary of
packets/summary_pdf.py): the bundled fonts, an A4 page with a letterhead and a numbered footer, paragraphs
and tables that read right to left where the document does, and the hygiene customer text goes through.

Built with fpdf2 (pure Python). Text is set in DejaVu Sans, regular and bold, bundled in fonts/ (copied from
Debian's fonts-dejavu-core 2.37-6; licence in fonts/LICENSE): it covers Latin with the Hungarian (ő, ű) and
Romanian (ș, ț) letters, Cyrillic, and Arabic including the Persian letters. fpdf2 embeds only the glyphs a
document uses, so a letter stays small (30 to 40 KB). Scripts DejaVu lacks (Chinese, Japanese, emoji in a
customer name) come out as blank glyphs: the document is still built. The font files are parsed once per
process; each document takes a copy of the parsed font with its own subset (`Document._add_parsed_font`).

**Arabic and Persian letters are rendered in their language**, right to left: fpdf2 shapes the text with
HarfBuzz (the uharfbuzz package) and orders mixed runs with the Unicode bidirectional algorithm, so Arabic
letters join, Latin runs (invoice numbers, IBANs, amounts) read left to right inside the right-to-left
lines, a line with no right-to-left letters at all (an address, an IBAN) is laid out left to right but
still aligned right, and tables are mirrored. What text extraction gives back: each Arabic word intact and
in logical order (the font subset maps the shaped glyphs back to the characters), Latin runs and ASCII
digits intact; the order of the runs within a mixed line is visual, and a run of Persian or Arabic-Indic
digits comes out reversed by pypdf (poppler's pdftotext gets it right). Shaping is on for every language,
so an Arabic customer name in an English letter is joined correctly too.

Customer-supplied text (names, references, ids) is only ever text here: control characters and explicit
bidirectional embeddings/overrides are removed (an RLO in a name would otherwise show the amounts after it
reversed), line breaks in single-line fields become spaces, and long words wrap.

Deterministic: the creation date is given (a send date, a hand-off date) at 00:00 UTC and the file id is a
hash of the content, so the same input gives the same bytes (with the same fpdf2 version).
"""

from __future__ import annotations

import copy
import functools
import io
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Literal
from unicodedata import bidirectional
from urllib.parse import urlsplit

from fontTools import ttLib  # type: ignore[import-untyped]
from fpdf import FPDF
from fpdf.fonts import FontFace, SubsetMap, TTFFont

from dunning.notices.render import Business

FONT_FAMILY = "DejaVuSans"
_FONT_FILES = {"": "DejaVuSans.ttf", "B": "DejaVuSans-Bold.ttf"}

BODY_PT = 10.0
SMALL_PT = 8.0
LINE_MM = 4.8
PARAGRAPH_GAP_MM = 2.0
GREY = 90

Align = Literal["L", "R", "C"]
# Bidirectional embeddings, overrides and isolates (LRE RLE PDF LRO RLO, LRI RLI FSI PDI). The marks LRM,
# RLM and ALM stay: they only nudge neutral characters and translators use them.
_BIDI_CONTROLS = dict.fromkeys([*range(0x202A, 0x202F), *range(0x2066, 0x206A)])
_LINE_BREAKS = re.compile("\r\n|[\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]")
_CONTROLS = re.compile("[\x00-\x08\x0e-\x1b\x1f\x7f-\x84\x86-\x9f]")
_BREAKABLE_SPACE = re.compile(r"[ \t\n\r\f\v]+")


def font_dir() -> Path:
    """The bundled fonts; FileNotFoundError when a build left the package data out."""
    directory = Path(__file__).parent / "fonts"
    missing = [name for name in _FONT_FILES.values() if not (directory / name).is_file()]
    if missing:
        raise FileNotFoundError(f"the PDF fonts {', '.join(missing)} are missing from {directory}")
    return directory


# What fpdf2 (2.8.9) changes in a TTFFont while it lays out and outputs a document: a document's copy of a
# parsed font (`Document._add_parsed_font`) has its own of each; the other attributes are only read, and
# shared. tests/unit/test_pdf_fonts.py fails when fpdf2's TTFFont has attributes these lists do not name.
DOCUMENT_FONT_STATE = frozenset(
    {"i", "ttfont", "desc", "cw", "subset", "missing_glyphs", "biggest_size_pt", "_hbfont"}
)
SHARED_FONT_STATE = frozenset(
    {
        "type", "name", "glyph_ids", "sp", "ss", "up", "ut", "ttffile", "fontkey", "emphasis", "scale",
        "cmap", "color_font", "unicode_range", "palette_index", "is_compressed", "is_cff", "is_cid_keyed",
        "is_symbol", "cff_ros", "collection_font_number",
    }
)  # fmt: skip


@functools.cache
def _parsed_font(path: Path, style: str) -> tuple[TTFFont, bytes]:
    """The font file parsed as fpdf2's add_font parses it (on a scratch document), once per process; and the
    file's bytes, for each document's own fontTools tables."""
    scratch = FPDF()
    scratch.add_font(FONT_FAMILY, style, str(path))
    (font,) = scratch.fonts.values()
    if not isinstance(font, TTFFont) or font.color_font is not None or (font.is_cff and font.is_cid_keyed):
        # A color font draws through objects of the scratch document; a CID-keyed CFF one needs PDF 1.6.
        raise ValueError(f"{path.name}: only a TrueType outline font can be shared between documents")
    font.close()  # its tables are never read again: each document opens its own
    return font, path.read_bytes()


# --- text hygiene -----------------------------------------------------------------------------------------


def clean_block(text: str) -> str:
    """Multi-line text with its line breaks as "\\n" and nothing that could steer the layout."""
    text = _LINE_BREAKS.sub("\n", text).replace("\t", " ")
    return _CONTROLS.sub("", text).translate(_BIDI_CONTROLS)


def clean_line(text: str) -> str:
    """A single-line field (name, id, reference) on one line, whatever it contains. Only ASCII whitespace
    is collapsed: the no-break spaces Babel puts inside amounts and dates keep them on one line."""
    return _BREAKABLE_SPACE.sub(" ", clean_block(text)).strip(" ")


def https_link(url: str | None) -> str | None:
    """`url` cleaned when it is a plain https:// address, else None. Like the email, a PDF links only to
    such an address: no javascript:, file: or mailto: tricks."""
    cleaned = clean_line(url or "")
    parts = urlsplit(cleaned)
    return cleaned if parts.scheme == "https" and parts.netloc and " " not in cleaned else None


# --- the document -------------------------------------------------------------------------------------


class Document(FPDF):
    """An A4 page in DejaVu Sans, left to right or right to left, with `footer` and "page/pages" at the
    foot of every page."""

    def __init__(self, *, rtl: bool, lang: str, created: date, title: str, author: str, footer: str) -> None:
        super().__init__(orientation="portrait", unit="mm", format="A4")
        self.rtl = rtl
        self._footer = footer
        fonts = font_dir()
        for style, name in _FONT_FILES.items():
            self._add_parsed_font(style, fonts / name)
        self.set_margins(20, 18, 20)
        self.set_auto_page_break(True, margin=22)
        self.directed()
        self.set_creation_date(datetime.combine(created, time(0), tzinfo=UTC))
        self.set_title(clean_line(title))
        self.set_author(clean_line(author))
        self.set_creator("dunning")
        self.set_lang(lang)
        self.set_font(FONT_FAMILY, size=BODY_PT)

    def _add_parsed_font(self, style: str, path: Path) -> None:
        """fpdf2's add_font(FONT_FAMILY, style, path) without parsing the file again: the document gets a
        copy of the font parsed once per process (`_parsed_font`), sharing what fpdf2 only reads (character
        map, glyph ids, metrics, names) and with its own of what fpdf2 changes as it builds and outputs the
        document (`DOCUMENT_FONT_STATE`)."""
        parsed, data = _parsed_font(path, style)
        font = copy.copy(parsed)
        font.i = len(self.fonts) + 1
        # output() subsets the font's fontTools tables in place, then closes them: each document opens its own
        # from the file's bytes, lazily, so only the tables the subsetter reads are decompiled.
        font.ttfont = ttLib.TTFont(
            io.BytesIO(data), recalcTimestamp=False, fontNumber=parsed.collection_font_number, lazy=True
        )
        font.desc = copy.copy(parsed.desc)  # output() names it and numbers it as this document's object
        font.cw = copy.copy(parsed.cw)  # a defaultdict: looking up a character the font lacks adds it
        font.subset = SubsetMap(font)  # the glyphs this document uses, and only they are embedded
        font.missing_glyphs = []
        font.biggest_size_pt = 0
        font._hbfont = None  # HarfBuzz's font is set to the size of each text it shapes
        self.fonts[font.fontkey] = font

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
        self.set_font(FONT_FAMILY, size=SMALL_PT)
        self.set_text_color(GREY)
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
        self.set_font(FONT_FAMILY, size=BODY_PT)

    def directed(self, text: str | None = None) -> None:
        """Lay out `text` right to left when the document is, unless it has no right-to-left letters: an
        address or an IBAN on its own line reads left to right (like dir=auto), still aligned right."""
        rtl = self.rtl and (text is None or any(bidirectional(c) in ("R", "AL") for c in text))
        self.set_text_shaping(use_shaping_engine=True, direction="rtl" if rtl else "ltr")

    def paragraph(
        self, text: str, *, size: float = BODY_PT, bold: bool = False, align: Align | None = None
    ) -> None:
        self.directed(text)
        self.set_font(FONT_FAMILY, "B" if bold else "", size)
        self.multi_cell(
            0, size * LINE_MM / BODY_PT, text, align=align or self.start, new_x="LMARGIN", new_y="NEXT"
        )
        self.set_font(FONT_FAMILY, "", BODY_PT)

    def gap(self, times: float = 1) -> None:
        self.ln(PARAGRAPH_GAP_MM * times)

    def letterhead(self, business: Business) -> None:
        self.paragraph(clean_line(business.name), size=15, bold=True)
        self.set_text_color(GREY)
        for line in (clean_line(line) for line in (*business.address, business.reply_to or "")):
            if line:
                self.paragraph(line, size=9)
        self.set_text_color(0)
        self.ln(2)
        self.set_draw_color(160)
        self.line(self.l_margin, self.get_y(), self.w - self.r_margin, self.get_y())
        self.set_draw_color(0)
        self.ln(5)


# --- tables -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Cell:
    text: str
    align: Align = "L"
    colspan: int = 1
    bold: bool = False


_BOLD = FontFace(emphasis="BOLD")
# Column headings a point smaller than the body: a long single word ("Задолженность") fits its column
# instead of breaking mid-word.
_HEADINGS = FontFace(emphasis="BOLD", size_pt=BODY_PT - 1, fill_color=(235, 235, 235))
_MIRRORED: dict[Align, Align] = {"L": "R", "R": "L", "C": "C"}


def draw_table(
    pdf: Document, widths: Sequence[float], rows: Sequence[Sequence[Cell]], *, headings: bool
) -> None:
    """`rows` as a table across the page, columns in proportion to `widths`; the first row as headings when
    `headings`. Mirrored for a right-to-left document."""
    pdf.directed()  # the cells mix labels and values: the document's direction
    with pdf.table(
        col_widths=tuple(reversed(widths)) if pdf.rtl else tuple(widths),
        first_row_as_headings=headings,
        headings_style=_HEADINGS,
        borders_layout="HORIZONTAL_LINES",
        line_height=LINE_MM,
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
