"""Notices: every stage's templates render, the customer's text is escaped, and the raw email is safe.

The English notices are checked in words here; tests/unit/test_golden_notices.py holds every language's
output as reviewed golden files.
"""

from __future__ import annotations

import email
import email.policy
import html
import logging
import re
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from email.message import EmailMessage
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import jinja2
import pytest

from dunning.notices import (
    Attachment,
    RenderedNotice,
    TemplateNotFound,
    build_message,
    render_notice,
    shipped_template_dir,
)
from dunning.notices import render as render_module
from dunning.notices.mime import safe_filename
from dunning.notices.render import (
    Business,
    ChargeLine,
    format_long_date,
    format_money,
    format_number,
    format_rate,
    language_of,
    numbering_system,
    single_line,
)
from tests.support.notices import CONTEXT as PLAIN_CONTEXT
from tests.support.notices import INVOICES as PLAIN_INVOICES
from tests.support.notices import SHIPPED, STAGES, interest_line, sample, without_identifiers

SENT_AT = datetime(2027, 3, 15, 9, 30, tzinfo=UTC)
SCRIPT = "<script>alert(1)</script>"

# The plain account's notices as emails: the reminder, with INV-1001's document attached and no payment
# details configured.
INVOICES = (replace(PLAIN_INVOICES[0], attached=True), PLAIN_INVOICES[1])
CONTEXT = replace(
    PLAIN_CONTEXT,
    stage="reminder",
    invoices=INVOICES,
    business=Business(name="Example Trading Ltd", reply_to="ar@example.com"),
    sent_on=SENT_AT.date(),
)


def _root_attributes(html: str) -> dict[str, str | None]:
    class Root(HTMLParser):
        attributes: dict[str, str | None] | None = None

        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            if tag == "html" and self.attributes is None:
                self.attributes = dict(attrs)

    parser = Root()
    parser.feed(html)
    assert parser.attributes is not None, "no <html> element"
    return parser.attributes


def _write(directory: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = directory / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return directory


def _message(rendered: RenderedNotice, **changes: Any) -> EmailMessage:
    arguments: dict[str, Any] = {
        "rendered": rendered,
        "sender": "Accounts Receivable <billing@example.com>",
        "to": ["ana@example.com"],
        "reply_to": "ar@example.com",
        "sent_at": SENT_AT,
        "message_id": "notice-1@dunning.example.com",
    } | changes
    raw = build_message(**arguments)
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


# --- rendering -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("stage", STAGES)
def test_every_customer_stage_renders_both_parts_with_every_invoice(stage: str) -> None:
    rendered = render_notice(replace(CONTEXT, stage=stage), [SHIPPED])

    assert rendered.subject and "\n" not in rendered.subject
    assert (rendered.lang, rendered.direction) == ("en", "ltr")
    for part in (rendered.text, rendered.html):
        for expected in ("Ana Popescu", "INV-1001", "PO-77", "INV-1002", "3 March 2027", "12 March 2027"):
            assert expected in part
        for amount in ("€1,200.00", "€80.50", "€1,280.50"):
            assert amount in part
        assert "Example Trading Ltd" in part and "ar@example.com" in part
        assert "How to pay" in part and "The payment details are on the invoice." in part
        assert "Kind regards," in part and "Accounts team" in part  # the default signature
    assert rendered.html.startswith("<!DOCTYPE html>")
    assert _root_attributes(rendered.html) == {"lang": "en", "dir": "ltr"}
    for external in ("<script", "<img", "<link", "@import", "http"):
        assert external not in rendered.html


@pytest.mark.parametrize("stage", ["demand_letter", "final_notice"])
def test_demand_and_final_notices_state_the_deadline(stage: str) -> None:
    rendered = render_notice(replace(CONTEXT, stage=stage), [SHIPPED])
    for part in (rendered.subject, rendered.text, rendered.html):
        assert "29 March 2027" in part
    with pytest.raises(ValueError, match="deadline"):
        render_notice(replace(CONTEXT, stage=stage, deadline=None), [SHIPPED])


def test_the_wording_escalates_without_inventing_amounts() -> None:
    # A business customer of a policy that charges under the EU regime, on a ladder that ends with legal.
    stated = replace(CONTEXT, charges_apply=True, interest_law="eu", legal_action=True)
    texts = {stage: render_notice(replace(stated, stage=stage), [SHIPPED]).text for stage in STAGES}
    assert "payment plan" in texts["second_reminder"] and "partial payment" in texts["second_reminder"]
    firm = " ".join(texts["firm_notice"].split())
    assert "late payment fees or interest may be charged" in firm
    assert "including statutory interest under Directive 2011/7/EU" in firm
    assert "formally demand" in texts["demand_letter"]
    assert "legal team or a collection agency" in " ".join(texts["final_notice"].split())


def test_a_notice_says_attached_only_when_a_document_is() -> None:
    with_copy = render_notice(replace(CONTEXT, stage="pre_due"), [SHIPPED])
    assert "attached a copy of invoice INV-1001" in " ".join(with_copy.text.split())

    bare = tuple(replace(invoice, attached=False) for invoice in INVOICES)
    without = render_notice(replace(CONTEXT, stage="pre_due", invoices=bare), [SHIPPED])
    assert "attached" not in without.text and "attached" not in without.html
    assert "send you a copy" in " ".join(without.text.split())


def test_customer_text_is_escaped_in_html_and_literal_in_text() -> None:
    invoice = replace(INVOICES[0], reference=SCRIPT)
    rendered = render_notice(replace(CONTEXT, customer_name=SCRIPT, invoices=(invoice,)), [SHIPPED])

    assert "<script" not in rendered.html
    assert rendered.html.count("&lt;script&gt;alert(1)&lt;/script&gt;") == 2
    assert rendered.text.count(SCRIPT) == 2


def test_strict_undefined_catches_a_missing_variable(tmp_path: Path) -> None:
    _write(
        tmp_path,
        {
            "en/tiny.subject.j2": "Hello",
            "en/tiny.txt.j2": "{{ no_such_variable }}",
            "en/tiny.html.j2": "<p></p>",
        },
    )
    with pytest.raises(jinja2.UndefinedError, match="no_such_variable"):
        render_notice(replace(CONTEXT, stage="tiny"), [tmp_path])


def test_an_earlier_directory_overrides_one_file_and_the_rest_fall_back(tmp_path: Path) -> None:
    _write(
        tmp_path, {"en/reminder.subject.j2": "Account {{ account_id }}: a word from {{ business_name }}\n"}
    )
    shipped = render_notice(CONTEXT, [SHIPPED])

    overridden = render_notice(CONTEXT, [tmp_path, SHIPPED])

    assert overridden.subject == "Account ACC-9: a word from Example Trading Ltd"
    assert overridden.text == shipped.text
    assert overridden.html == shipped.html.replace(shipped.subject, overridden.subject)  # the <title>
    assert render_notice(CONTEXT, [SHIPPED, tmp_path]).subject == shipped.subject


def test_a_subject_is_one_line(tmp_path: Path) -> None:
    assert single_line("  Payment\t reminder   for  you \n") == "Payment reminder for you"
    _write(tmp_path, {"en/reminder.subject.j2": "Reminder for {{ customer_name }}\n"})
    with pytest.raises(ValueError, match="one line"):
        render_notice(replace(CONTEXT, customer_name="Eve\r\nBcc: x@evil.example"), [tmp_path, SHIPPED])


def test_a_language_without_templates_falls_back_to_english(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="dunning.notices.render"):
        rendered = render_notice(replace(CONTEXT, locale="de_DE"), [SHIPPED])

    assert (rendered.lang, rendered.direction) == ("en", "ltr")
    assert _root_attributes(rendered.html) == {"lang": "en", "dir": "ltr"}
    assert any(
        "'de'" in record.getMessage() for record in caplog.records if record.levelno == logging.WARNING
    )
    # English words with German numbers would read oddly: the fallback is formatted in English too.
    assert "€1,280.50" in rendered.text and "3 March 2027" in rendered.text


def test_a_locale_is_looked_up_by_its_language(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    assert language_of("hu_HU") == language_of("hu-HU") == "hu"
    _write(
        tmp_path,
        {
            "hu/reminder.subject.j2": "Fizetési emlékeztető",
            "hu/reminder.txt.j2": "Kedves {{ customer_name }}!\n",
            "hu/reminder.html.j2": '<!DOCTYPE html><html lang="{{ lang }}" dir="{{ dir }}"></html>',
        },
    )
    with caplog.at_level(logging.WARNING):
        rendered = render_notice(replace(CONTEXT, locale="hu_HU"), [tmp_path, SHIPPED])

    assert (rendered.lang, rendered.subject, rendered.text) == (
        "hu",
        "Fizetési emlékeztető",
        "Kedves Ana Popescu!\n",
    )
    assert not caplog.records


def test_arabic_templates_render_right_to_left(tmp_path: Path) -> None:
    # A name with a slash is taken from the template root, so a translation may reuse another's layout.
    _write(
        tmp_path,
        {
            "ar/reminder.subject.j2": "تذكير بالدفع",
            "ar/reminder.txt.j2": '{% extends "en/_base.txt.j2" %}',
            "ar/reminder.html.j2": '{% extends "en/_base.html.j2" %}',
        },
    )
    rendered = render_notice(replace(CONTEXT, locale="ar"), [tmp_path, SHIPPED])

    assert (rendered.lang, rendered.direction) == ("ar", "rtl")
    assert _root_attributes(rendered.html) == {"lang": "ar", "dir": "rtl"}


BUSINESS = Business(
    name="Example Trading Ltd",
    address=("1 High Street", "Bristol BS1 4DJ"),
    reply_to="ar@example.com",
    payment_instructions=("Sort code 12-34-56", "Account 12345678"),
    payment_link="https://pay.example.com/acc-9",
    signature="Jane Smith\nCredit controller",
    logo_url="https://www.example.com/logo.png",
)
# Worked by hand: 12.50 % a year on 1,200.00 for 14 days = 1200 x 0.125 x 14 / 365 = 5.75; a 2 % late fee
# on 1,200.00 = 24.00; EUR 40 fixed compensation. Together 69.75, and 1,350.25 with the 1,280.50 owed.
CHARGES = (
    ChargeLine("late_fee", "INV-1001", Decimal("24.00"), "EUR", (("rate", "2"), ("of", "1200.00"))),
    interest_line("INV-1001", "5.75", rate="12.50", days="14", start=date(2027, 3, 4), end=date(2027, 3, 17)),
    ChargeLine("fixed_compensation", "INV-1001", Decimal("40.00"), "EUR"),
)


def _words(text: str) -> str:
    return " ".join(text.split())


def test_every_notice_carries_the_business_identity() -> None:
    for stage in STAGES:
        rendered = render_notice(replace(CONTEXT, stage=stage, business=BUSINESS), [SHIPPED])
        for part in (rendered.text, rendered.html):
            for value in ("1 High Street", "Bristol BS1 4DJ", "Sort code 12-34-56", "Account 12345678"):
                assert value in part
            assert "Jane Smith" in part and "Credit controller" in part and "Accounts team" not in part
            assert "The payment details are on the invoice." not in part
        assert "Pay online: https://pay.example.com/acc-9" in rendered.text
        assert '<a href="https://pay.example.com/acc-9" style="color:#1a56a8;">' in rendered.html
        assert '<img src="https://www.example.com/logo.png" alt="Example Trading Ltd"' in rendered.html
        assert "<bdi>Jane Smith</bdi><br>" in rendered.html  # one line of the signature each
        assert "logo" not in rendered.text


def test_without_a_logo_there_is_no_image_and_no_external_reference() -> None:
    rendered = render_notice(replace(CONTEXT, business=replace(BUSINESS, logo_url=None)), [SHIPPED])

    assert "<img" not in rendered.html
    assert re.findall(r"(?:src|href)=\"([^\"]+)\"", rendered.html) == ["https://pay.example.com/acc-9"]


def test_an_http_logo_or_payment_link_is_left_out_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    business = replace(BUSINESS, logo_url="http://www.example.com/logo.png", payment_link="javascript:x()")
    with caplog.at_level(logging.WARNING, logger="dunning.notices.render"):
        rendered = render_notice(replace(CONTEXT, business=business), [SHIPPED])

    assert "<img" not in rendered.html and "<a " not in rendered.html and "javascript" not in rendered.text
    assert "Sort code 12-34-56" in rendered.text  # the bank details still say how to pay
    assert sorted(record.getMessage().split(":")[0] for record in caplog.records) == [
        "leaving the logo out of the notice",
        "leaving the payment link out of the notice",
    ]


@pytest.mark.parametrize("stage", ["firm_notice", "demand_letter", "final_notice"])
def test_charges_are_broken_down_with_the_total_now_due(stage: str) -> None:
    rendered = render_notice(replace(CONTEXT, stage=stage, charges=CHARGES), [SHIPPED])
    text = _words(rendered.text)

    assert "- Invoice INV-1001, late payment fee (2% of €1,200.00): €24.00" in text
    assert (
        "- Invoice INV-1001, statutory interest at 12.50% a year for 14 days (4 March 2027 to 17 March 2027):"
        " €5.75" in text
    )
    assert "- Invoice INV-1001, fixed compensation for recovery costs: €40.00" in text
    assert "Total charges: €69.75" in text and "Total now due: €1,350.25" in text
    assert "€1,350.25" in rendered.subject
    assert "may be" not in text  # the charges are stated, not hinted at
    html = _words(rendered.html)
    assert 'Invoice <bdi style="white-space:nowrap;">INV-1001</bdi>: fixed compensation for recovery' in html
    assert "<bdi>€1,350.25</bdi>" in html


def test_the_firm_notice_states_charges_or_says_neutrally_that_they_may_apply() -> None:
    charging = replace(CONTEXT, stage="firm_notice", charges_apply=True)
    without = _words(render_notice(charging, [SHIPPED]).text)
    with_charges = _words(render_notice(replace(charging, charges=CHARGES), [SHIPPED]).text)
    not_charging = _words(render_notice(replace(CONTEXT, stage="firm_notice"), [SHIPPED]).text)

    assert "Under our payment terms, late payment fees or interest may be charged on overdue" in without
    assert "Late payment charges" not in without and "€" + "69.75" not in without
    # A policy that charges this customer nothing says nothing of fees or interest.
    assert "fee" not in not_charging and "interest" not in not_charging
    assert "the late payment charges set out below now apply, bringing the total now due to €1,350.25" in (
        with_charges
    )


@pytest.mark.parametrize("stage", ["pre_due", "reminder", "second_reminder"])
def test_the_early_notices_mention_no_charges(stage: str) -> None:
    rendered = render_notice(replace(CONTEXT, stage=stage), [SHIPPED])
    for part in (rendered.text, rendered.html):
        assert "interest" not in part and "fee" not in part


@pytest.mark.parametrize(
    ("line", "words"),
    [
        (ChargeLine("penalty", "INV-1001", Decimal(1), "EUR"), "unknown charge kind 'penalty'"),
        (ChargeLine("statutory_interest", "INV-1001", Decimal(1), "EUR", (("rate", "8"),)), "days, from, to"),
        (
            ChargeLine("contract_interest", "INV-1001", Decimal(1), "EUR", (("rate", "18"),)),
            "days, from, per, stated_rate, to",
        ),
        (
            ChargeLine(
                "contract_interest",
                "INV-1001",
                Decimal(1),
                "EUR",
                (
                    ("stated_rate", "1.5"),
                    ("per", "week"),
                    ("days", "3"),
                    ("from", date(2027, 3, 4)),
                    ("to", date(2027, 3, 6)),
                ),
            ),
            "per month or per year",
        ),
    ],
)
def test_a_charge_line_the_templates_cannot_describe_is_refused(line: ChargeLine, words: str) -> None:
    with pytest.raises(ValueError, match=words):
        render_notice(replace(CONTEXT, stage="firm_notice", charges=(line,)), [SHIPPED])


def test_a_float_amount_is_refused_rather_than_rounded() -> None:
    with pytest.raises(TypeError, match="exact numbers"):
        invoice = replace(INVOICES[0], outstanding=1200.5)  # type: ignore[arg-type]
        render_notice(replace(CONTEXT, invoices=(invoice,)), [SHIPPED])


def test_a_consumer_notice_ends_with_the_email_opt_out() -> None:
    for stage in STAGES:
        business = render_notice(replace(CONTEXT, stage=stage), [SHIPPED])
        consumer = render_notice(replace(CONTEXT, stage=stage, consumer=True), [SHIPPED])

        assert "STOP" not in business.text + business.html
        text = _words(consumer.text)
        assert (
            "You can ask us to stop contacting you by email: reply to this email with the word STOP and a "
            "member of our team will record your request." in text
        )
        assert text.index("STOP") > text.index("Accounts team") and "STOP" in _words(consumer.html)


def test_a_notice_in_another_currency_keeps_its_minor_units() -> None:
    invoice = replace(INVOICES[0], outstanding=Decimal("150000"), currency="JPY")
    rendered = render_notice(
        replace(CONTEXT, invoices=(invoice,), total_due=Decimal("150000"), currency="JPY"), [SHIPPED]
    )
    assert "¥150,000" in rendered.text and "¥150,000." not in rendered.text


def test_a_date_is_never_split_across_two_lines_of_the_text() -> None:
    for stage in STAGES:
        text = render_notice(
            replace(CONTEXT, stage=stage, business=BUSINESS, charges=CHARGES), [SHIPPED]
        ).text
        for month in ("March", "April"):
            assert f"\n{month} 2027" not in text
        assert "\ue000" not in text


def test_hostile_business_values_are_escaped_in_html() -> None:
    business = Business(
        name=SCRIPT,
        address=('"><img src=x onerror=alert(1)>',),
        reply_to=SCRIPT,
        payment_instructions=(SCRIPT,),
        signature=SCRIPT,
    )
    rendered = render_notice(replace(CONTEXT, business=business, customer_name=SCRIPT), [SHIPPED])

    assert "<script" not in rendered.html and "<img" not in rendered.html
    assert rendered.html.count("&lt;script&gt;alert(1)&lt;/script&gt;") >= 6
    assert "&#34;&gt;&lt;img src=x onerror=alert(1)&gt;" in rendered.html


def test_a_stage_without_templates_is_reported() -> None:
    with pytest.raises(TemplateNotFound, match="no_such_stage"):
        render_notice(replace(CONTEXT, stage="no_such_stage"), [SHIPPED])


def test_shipped_templates_are_found_in_the_package_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert (SHIPPED / "en" / "reminder.txt.j2").is_file()

    packaged = _write(tmp_path / "layer" / "dunning" / "notices", {"templates/en/reminder.txt.j2": ""})
    monkeypatch.setattr(render_module, "__file__", str(packaged / "render.py"))
    assert shipped_template_dir() == packaged / "templates"

    monkeypatch.setattr(render_module, "__file__", str(tmp_path / "bare" / "render.py"))
    with pytest.raises(FileNotFoundError, match="notice templates"):
        shipped_template_dir()


# --- the raw message -------------------------------------------------------------------------------------


def test_a_message_is_multipart_alternative_with_every_header() -> None:
    rendered = render_notice(CONTEXT, [SHIPPED])
    message = _message(
        rendered,
        to=["ana@example.com", "Accounts Payable <ap@example.com>"],
        headers={"X-Dunning-Notice": "ACC-9/reminder"},
    )

    assert message.get_content_type() == "multipart/alternative"
    plain, html = message.iter_parts()
    assert (plain.get_content_type(), html.get_content_type()) == ("text/plain", "text/html")
    assert plain.get_content_charset() == html.get_content_charset() == "utf-8"
    assert plain.get_content().replace("\r\n", "\n") == rendered.text
    assert html.get_content().replace("\r\n", "\n") == rendered.html
    assert message["From"] == "Accounts Receivable <billing@example.com>"
    assert message["To"] == "ana@example.com, Accounts Payable <ap@example.com>"
    assert message["Reply-To"] == "ar@example.com"
    assert message["Subject"] == rendered.subject
    assert message["Date"].datetime == SENT_AT
    assert message["Message-ID"] == "<notice-1@dunning.example.com>"
    assert message["MIME-Version"] == "1.0"
    assert message["X-Dunning-Notice"] == "ACC-9/reminder"


def test_the_date_header_keeps_the_given_offset_and_an_id_in_brackets_stays_as_is() -> None:
    bucharest = SENT_AT.astimezone(timezone(timedelta(hours=2)))
    message = _message(
        render_notice(CONTEXT, [SHIPPED]), sent_at=bucharest, message_id="<a@b>", reply_to=None
    )

    assert message["Date"].datetime == bucharest and str(message["Date"]).endswith("+0200")
    assert message["Message-ID"] == "<a@b>"
    assert "Reply-To" not in message


def test_attachments_make_it_mixed_with_sanitised_names() -> None:
    pdf = b"%PDF-1.7\n\x00\xff binary"
    message = _message(
        render_notice(CONTEXT, [SHIPPED]),
        attachments=[Attachment("../../etc/passwd\r\n.pdf", pdf), Attachment("Счёт №7.pdf", b"%PDF")],
    )

    assert message.get_content_type() == "multipart/mixed"
    body, *attached = message.iter_parts()
    assert body.get_content_type() == "multipart/alternative"
    assert [part.get_filename() for part in attached] == ["passwd.pdf", "Счёт №7.pdf"]
    assert [part.get_content_type() for part in attached] == ["application/pdf", "application/pdf"]
    assert attached[0].get_content() == pdf


@pytest.mark.parametrize(
    ("name", "safe"),
    [
        ("../../etc/passwd\r\n.pdf", "passwd.pdf"),
        ("..\\..\\windows\\invoice.pdf", "invoice.pdf"),
        ("\"quoted\" 'name'.pdf", "quoted name.pdf"),
        ("invoice\u202efdp.exe", "invoicefdp.exe"),
        ("..", "attachment.pdf"),
        ("", "attachment.pdf"),
        (".hidden.pdf", "hidden.pdf"),
    ],
)
def test_attachment_names_are_sanitised(name: str, safe: str) -> None:
    assert safe_filename(name) == safe


def test_non_ascii_names_come_out_as_seven_bit_ascii() -> None:
    context = replace(
        CONTEXT, customer_name="Анна Попеску / آنا پوپسکو", business=Business(name="Торговый дом")
    )
    rendered = render_notice(context, [SHIPPED])
    raw = build_message(
        rendered=rendered,
        sender="Торговый дом <billing@example.com>",
        to=["Анна Попеску <anna@example.com>", "محمد العلي <m@example.com>", "ivan@пример.рф"],
        reply_to="الحسابات <ar@example.com>",
        sent_at=SENT_AT,
        message_id="n-2@example.com",
        attachments=[Attachment("فاتورة.pdf", b"%PDF")],
    )

    raw.decode("ascii")
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert message["From"].addresses[0].display_name == "Торговый дом"
    assert [address.display_name for address in message["To"].addresses][:2] == ["Анна Попеску", "محمد العلي"]
    assert message["To"].addresses[2].addr_spec == "ivan@xn--e1afmkfd.xn--p1ai"
    assert message["Reply-To"].addresses[0].display_name == "الحسابات"
    plain = message.get_body(("plain",))
    assert plain is not None and "Анна Попеску / آنا پوپسکو" in plain.get_content()


def test_a_name_with_a_line_break_cannot_add_a_header() -> None:
    name = "Eve\r\nBcc: x@evil.example"
    rendered = render_notice(replace(CONTEXT, customer_name=name), [SHIPPED])

    # In the body it is only text.
    assert "Bcc" not in _message(rendered)
    # Anywhere it would reach a header, the message is refused.
    for changes in (
        {"to": [f"{name} <eve@example.com>"]},
        {"sender": f"{name} <billing@example.com>"},
        {"reply_to": f"{name} <ar@example.com>"},
        {"message_id": "x@example.com\r\nBcc: x@evil.example"},
        {"headers": {"X-Dunning-Notice": name}},
    ):
        with pytest.raises(ValueError, match="line breaks"):
            _message(rendered, **changes)
    with pytest.raises(ValueError, match="line breaks"):
        _message(replace(rendered, subject=name))


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"sent_at": datetime(2027, 3, 15, 9, 30)}, "time-zone aware"),
        ({"to": []}, "at least one recipient"),
        ({"to": ["not an address"]}, "not an email address"),
        ({"headers": {"Content-Type": "text/plain"}}, "set by build_message"),
        ({"headers": {"Subject": "again"}}, "set by build_message"),
        ({"headers": {"X Bad": "1"}}, "not a valid header name"),
        ({"attachments": [Attachment("a.pdf", b"", content_type="pdf")]}, "not a MIME type"),
    ],
)
def test_bad_message_arguments_are_refused(changes: dict[str, Any], words: str) -> None:
    with pytest.raises(ValueError, match=words):
        _message(render_notice(CONTEXT, [SHIPPED]), **changes)


def test_override_templates_cannot_reach_into_python(tmp_path: Path) -> None:
    evil = tmp_path / "en"
    evil.mkdir()
    (evil / "reminder.subject.j2").write_text("{{ customer_name.__class__.__mro__[1].__subclasses__() }}\n")
    with pytest.raises(jinja2.exceptions.SecurityError):
        render_notice(replace(CONTEXT, stage="reminder"), [tmp_path, SHIPPED])


# --- the locale's digits ------------------------------------------------------------------------------


def test_persian_numbers_are_in_persian_digits_and_arabic_ones_as_its_locale_says() -> None:
    # CLDR's default numbering system: arabext for fa (۰-۹ with ٬ and ٫), latn for ar in Babel 2.18's
    # CLDR, arab for ar_EG (٠-٩). Babel itself formats every locale with ASCII digits.
    assert format_money(Decimal("1280.50"), "EUR", "fa") == "\u200e€\xa0۱٬۲۸۰٫۵۰"
    assert format_money(Decimal("1234"), "JPY", "fa_IR") == "\u200e¥\xa0۱٬۲۳۴"
    assert format_rate(Decimal("10.15"), "fa") == "۱۰٫۱۵%"
    assert format_long_date(date(2027, 3, 15), "fa") == "۱۵ مارس ۲۰۲۷"
    assert format_number(30, "fa") == "۳۰" and format_number(1000, "fa") == "۱٬۰۰۰"
    assert format_money(Decimal("1280.50"), "EUR", "ar") == "\u200f1,280.50\xa0€"
    assert format_long_date(date(2027, 3, 15), "ar") == "15 مارس 2027"
    assert format_money(Decimal("1280.50"), "EUR", "ar_EG") == "\u200f١٬٢٨٠٫٥٠\xa0€"
    assert format_rate("2", "ar_EG") == "٢%"
    assert (
        format_number(1000, "en") == "1,000"
        and format_long_date(date(2027, 3, 15), "en_GB") == "15 March 2027"
    )
    assert (numbering_system("fa"), numbering_system("ar"), numbering_system("ar_EG")) == (
        "arabext",
        "latn",
        "arab",
    )


@pytest.mark.parametrize("stage", STAGES)
def test_a_persian_notice_has_no_ascii_digit_outside_what_it_quotes(stage: str) -> None:
    """Every amount, date, rate and count in a Persian notice (subject, text and HTML) is in Persian digits;
    the ids, references, addresses and links it quotes stay as the customer or the business wrote them."""
    context = sample("fa", stage)
    notice = render_notice(context, [SHIPPED])
    # The HTML's words, not its markup (style="margin:0 0 16px", links in href).
    html_words = html.unescape(re.sub(r"<[^>]*>", " ", notice.html))

    for part in (notice.subject, notice.text, html_words):
        assert re.search("[۰-۹]", part)
        left = without_identifiers(part, context)
        assert not re.search("[0-9]", left), re.findall(r"\S*[0-9]\S*", left)
    for part in (notice.text, html_words):
        # What the notice quotes is as written: never converted to Persian digits.
        for quoted in ("INV-1001", "ACC-9", "PO-77", "IBAN RO49 AAAA 1B31 0075 9384 0000", "acc-9"):
            assert quoted in part
    if stage in {"firm_notice", "demand_letter", "final_notice"}:
        for part in (notice.text, html_words):
            flat = " ".join(part.split())
            # The days ngettext counts ("for 30 days") and the rate, in the locale's digits.
            assert "برای ۳۰ روز" in flat and "برای ۱۸ روز" in flat and "۱۰٫۱۵%" in flat


def test_the_check_for_ascii_digits_finds_them() -> None:
    # The same notice with ASCII digits (as it was before Persian digits): the check above would fail.
    context = sample("fa", "final_notice")
    text = render_notice(context, [SHIPPED]).text.translate({0x6F0 + d: str(d) for d in range(10)})
    assert re.findall("[0-9]", without_identifiers(text, context))


def test_a_business_template_writes_a_count_in_the_locales_digits(tmp_path: Path) -> None:
    (tmp_path / "fa").mkdir()
    (tmp_path / "fa" / "reminder.subject.j2").write_text(
        "{{ invoices|length|number }} صورتحساب، {{ ngettext('%(num)s day', '%(num)s days', 1000) }}",
        encoding="utf-8",
    )
    notice = render_notice(sample("fa", "reminder"), [tmp_path, SHIPPED])
    assert notice.subject == "۲ صورتحساب، ۱٬۰۰۰ روز"
