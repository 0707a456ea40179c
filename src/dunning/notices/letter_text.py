"""The words of a PDF letter: its paragraphs before and after the invoice table that pdf.py draws.

They come from the template render, not from taking the email apart: render_notice renders the text template
a second time in letter mode (RenderedNotice.letter_text), in which the shared layout
(templates/_layout/base.txt.j2) leaves out what the PDF has of its own (the letterhead block with the
recipient, date and account: the PDF prints them; the email signature after "--": "reply to this email"
has no place on paper), writes each paragraph and list item on one line (the PDF wraps them to the page),
and writes the line LETTER_TABLE_MARKER where the invoice list and the charges list were (the table itemises
both). The letter is that text's paragraphs, split at the marker.

A business's own template that does not extend the shared layout has no marker: its whole text is the
letter, with the table before its last paragraph (the sign-off) and without the email signature (everything
after a "--" line). So is a RenderedNotice made without letter_text (its `text`).
"""

from __future__ import annotations

from dataclasses import dataclass

from dunning.notices.pdf_layout import clean_block
from dunning.notices.render import LETTER_TABLE_MARKER, RenderedNotice

_SIGNATURE_DELIMITER = "--"


@dataclass(frozen=True)
class LetterText:
    """The letter's paragraphs, before and after the invoice table; a paragraph's line breaks are the
    template's own (a sign-off, an address, a list)."""

    before: tuple[str, ...]
    after: tuple[str, ...]

    @property
    def paragraphs(self) -> tuple[str, ...]:
        return (*self.before, *self.after)


def letter_text(rendered: RenderedNotice) -> LetterText:
    """The words of `rendered`'s PDF letter around the invoice table."""
    text = clean_block(rendered.letter_text if rendered.letter_text is not None else rendered.text)
    lines = [line.rstrip() for line in text.split("\n")]
    marker = LETTER_TABLE_MARKER
    if marker in lines:
        at = lines.index(marker)
        after = [line for line in lines[at + 1 :] if line != marker]
        return LetterText(before=_paragraphs(lines[:at]), after=_paragraphs(after))
    # A template of the business's own, without the shared layout.
    if _SIGNATURE_DELIMITER in lines:
        lines = lines[: lines.index(_SIGNATURE_DELIMITER)]
    paragraphs = _paragraphs(lines)
    at = max(len(paragraphs) - 1, 1)
    return LetterText(before=paragraphs[:at], after=paragraphs[at:])


def _paragraphs(lines: list[str]) -> tuple[str, ...]:
    """The runs of non-blank lines, each as one paragraph."""
    paragraphs: list[list[str]] = [[]]
    for line in lines:
        if line.strip():
            paragraphs[-1].append(line)
        elif paragraphs[-1]:
            paragraphs.append([])
    return tuple("\n".join(p) for p in paragraphs if p)
