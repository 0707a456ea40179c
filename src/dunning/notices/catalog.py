"""The words of the notices and PDF letters in each language: gettext catalogs, one per language.

The catalogs are the .po files under locale/<language>/LC_MESSAGES/dunning.po, read from source the first
time a language is asked for (no build step, nothing compiled to check in) and kept for the life of the
process. The message ids are the English words; en/dunning.po holds no translations (an empty msgstr is
the English msgid) and exists for its Plural-Forms header.

What the catalogs hold is the chrome every notice shares (salutation, table headings, totals, how to pay,
the footer, the descriptions of the charge lines, the laws a notice cites) and the PDF's labels, so that an
email and its PDF letter say the same thing in the same words. A letter's own prose, where the wording is
legal text, stays in the per-language stage templates (templates/<language>/<stage>.*.j2).

Plural forms are gettext's (ngettext with each catalog's Plural-Forms), which tests/unit/test_catalogs.py
checks against Babel's CLDR plural rules for the language.
"""

from __future__ import annotations

import functools
import gettext
from io import BytesIO
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations

DOMAIN = "dunning"
LOCALE_DIR = Path(__file__).parent / "locale"


def catalog_path(language: str) -> Path:
    return LOCALE_DIR / language / "LC_MESSAGES" / f"{DOMAIN}.po"


def languages() -> tuple[str, ...]:
    """The languages that have a catalog."""
    return tuple(sorted(path.parent.parent.name for path in LOCALE_DIR.glob(f"*/LC_MESSAGES/{DOMAIN}.po")))


def has_catalog(language: str) -> bool:
    return catalog_path(language).is_file()


@functools.cache
def translations(language: str) -> gettext.NullTranslations:
    """The catalog of `language`, parsed from its .po file once per process; a language without one gets
    the English message ids."""
    if not LOCALE_DIR.is_dir():
        # A build that left the catalogs out would otherwise send English words in every language.
        raise FileNotFoundError(f"the notice catalogs are missing: {LOCALE_DIR} does not exist")
    path = catalog_path(language)
    if not path.is_file():
        return gettext.NullTranslations()
    with path.open("rb") as source:
        catalog = read_po(source, locale=language, domain=DOMAIN)
    compiled = BytesIO()
    write_mo(compiled, catalog)
    compiled.seek(0)
    return Translations(fp=compiled, domain=DOMAIN)
