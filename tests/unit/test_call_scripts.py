"""The call scripts (CONTRACT 9, notices.scripts) in every shipped language, compared with the reviewed copies
in tests/golden/<language>/call_script.txt; and what a collector relies on in each: the figures, the
prepared answers to the five usual excuses, the firmer words only at the firm stages.

After changing a script on purpose, regenerate the copies and read the diff:

    DUNNING_UPDATE_GOLDEN=1 .venv/bin/pytest -q tests/unit/test_call_scripts.py
"""

from __future__ import annotations

import os
from dataclasses import replace
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from dunning.notices.render import shipped_template_dir
from dunning.notices.scripts import CallScriptContext, render_call_script
from tests.support.notices import LANGUAGES, LOCALES

GOLDEN = Path(__file__).resolve().parents[1] / "golden"
UPDATE = os.environ.get("DUNNING_UPDATE_GOLDEN") == "1"
SHIPPED = shipped_template_dir()
SAMPLE = CallScriptContext(
    stage="call",
    locale="en_GB",
    account_id="ACME",
    customer_name="Acme Distribution Ltd",
    customer_email="ap@acme.example.com",
    business_name="Example Trading Ltd",
    caller="Dana",
    currency="EUR",
    amount_due=Decimal("1250.50"),
    invoice_ids=("INV-1001", "INV-1002"),
    oldest_due_on=date(2027, 2, 10),
    days_overdue=10,
    call_back_on=date(2027, 2, 26),
)
# A word of each prepared answer's opening, per language: the five excuses of CONTRACT 9 are all answered.
EXCUSES = {
    "en": ("cheque is in the mail", "never got the invoice", "can't pay it all", "accounts payable", "goods"),
    "ro": ("Cecul", "Nu am primit factura", "Nu putem plăti totul", "departamentul de plăți", "marfa"),
    "hu": ("csekket", "Nem kaptuk meg a számlát", "egészet kifizetni", "könyvelésnél", "áruval"),
    "ru": ("Чек", "Мы не получали счёт", "оплатить всё сразу", "бухгалтерии", "товару"),
    "ar": ("الشيك", "لم نستلم الفاتورة", "دفع المبلغ كاملًا", "الحسابات الدائنة", "البضاعة"),
    "fa": ("چک", "صورت‌حساب به دست ما نرسیده", "همه را پرداخت کنیم", "واحد حسابداری", "کالا"),
}
# The firmer sentence of the firm stages, per language (a word of it).
FIRM = {
    "en": "legal action",
    "ro": "instanță",
    "hu": "jogi lépéseket",
    "ru": "суд",
    "ar": "قانونية",
    "fa": "حقوقی",
}


def _script(language: str, **changes: object) -> str:
    return render_call_script(replace(SAMPLE, locale=LOCALES[language], **changes), [SHIPPED])  # type: ignore[arg-type]


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_script_reads_as_reviewed(language: str) -> None:
    rendered = _script(language)
    golden = GOLDEN / language / "call_script.txt"
    if UPDATE:
        golden.write_text(rendered, encoding="utf-8")
    assert rendered == golden.read_text(encoding="utf-8")


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_script_has_the_figures_and_an_answer_to_each_usual_excuse(language: str) -> None:
    rendered = _script(language)

    assert "ACME" in rendered and "INV-1001" in rendered and "ap@acme.example.com" in rendered
    assert "Dana" in rendered and "Example Trading Ltd" in rendered
    assert [excuse for excuse in EXCUSES[language] if excuse not in rendered] == []
    assert FIRM[language] not in rendered, "a friendly stage does not speak of the courts"
    assert FIRM[language] in _script(language, stage="firm_notice")


def test_a_language_without_a_script_gets_the_english_one() -> None:
    assert render_call_script(replace(SAMPLE, locale="de_DE"), [SHIPPED]) == _script("en")


def test_a_business_script_under_its_templates_comes_first(tmp_path: Path) -> None:
    (tmp_path / "en").mkdir()
    (tmp_path / "en" / "call_script.txt.j2").write_text(
        "Call {{ customer_name }} about {{ amount_due|amount(currency) }}.\n"
    )

    assert render_call_script(SAMPLE, [tmp_path, SHIPPED]) == "Call Acme Distribution Ltd about €1,250.50.\n"
