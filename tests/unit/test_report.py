"""report.html: an offline page whose numbers an accountant can check by hand, safe with hostile names."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from html.parser import HTMLParser
from typing import Any

import pytest

from dunning.local.report import (
    BUCKETS,
    TEMPLATE_DIR,
    InvoiceLine,
    aging,
    aging_bucket,
    collected,
    describe,
    render_report,
)

START = date(2027, 1, 4)  # a Monday, so ISO weeks start on the period's first day
END = date(2027, 3, 31)
HOSTILE = "<script>alert(1)</script>"


def _invoice(
    account: str, invoice_id: str, currency: str, amount: str, due_on: date, **changes: Any
) -> InvoiceLine:
    values: dict[str, Any] = {
        "account_id": account,
        "customer_name": {"ACME": "Acme Ltd", "TOKYO": HOSTILE}.get(account, account),
        "invoice_id": invoice_id,
        "currency": currency,
        "amount": Decimal(amount),
        "due_on": due_on,
        "outstanding": Decimal(amount),
        "status": "open",
        **changes,
    }
    return InvoiceLine(**values)


INVOICES = [
    _invoice("ACME", "A-1", "EUR", "100.00", END - timedelta(days=10)),
    _invoice("ACME", "A-2", "EUR", "50.00", END + timedelta(days=15)),
    _invoice("ACME", "A-3", "EUR", "80.00", END - timedelta(days=40), status="paid", outstanding=Decimal(0)),
    _invoice("ACME", "A-4", "EUR", "70.00", END - timedelta(days=61), outstanding=Decimal("25.50")),
    _invoice("ACME", "A-5", "EUR", "9.99", END - timedelta(days=200), status="void"),
    _invoice("TOKYO", "T-1", "JPY", "5000", END - timedelta(days=95)),
]


def _event(at: str, type_: str, account: str, **keys: Any) -> dict[str, Any]:
    return {"at": at, "type": type_, "account_id": account, **keys}


# Deliberately not in time order: the report must sort.
EVENTS = [
    _event(
        "2027-01-11T09:00:00Z", "payment_applied", "ACME", invoice_id="A-3", amount="10.00", currency="EUR"
    ),
    _event(
        "2027-01-05T08:00:00Z",
        "notice_sent",
        "ACME",
        stage="reminder",
        invoice_ids=["A-1", "A-2"],
        amount_due="120.50",
        currency="EUR",
        to=["a@b.c"],
        message_id="m-1",
        eml="0001.eml",
    ),
    _event(
        "2027-01-05T07:00:00Z", "payment_applied", "ACME", invoice_id="A-3", amount="30.00", currency="EUR"
    ),
    _event(
        "2027-01-10T23:00:00Z", "payment_applied", "ACME", invoice_id="A-3", amount="20.50", currency="EUR"
    ),
    _event(
        "2027-02-01T08:00:00Z", "payment_applied", "TOKYO", invoice_id="T-1", amount="1000", currency="JPY"
    ),
    _event("2027-01-10T23:00:00Z", "account_settled", "ACME"),
    _event("2027-01-06T08:00:00Z", "notice_skipped", "ACME", stage="firm_notice", reason="paid"),
    _event("2027-01-07T08:00:00Z", "notice_skipped", "TOKYO", stage="reminder", reason="paused"),
    _event("2027-01-08T08:00:00Z", "notice_skipped", "ACME", stage="reminder", reason="paid"),
    _event(
        "2027-03-01T08:00:00Z",
        "case_opened",
        "TOKYO",
        case_id="CASE-TOKYO-1",
        packet="CASE-TOKYO-1.zip",
        amount_due="5000",
        currency="JPY",
    ),
    _event(
        "2027-01-04T06:00:00Z", "row_rejected", "", source="invoices.csv", row=5, error="amount: <b>x</b>"
    ),
    _event("2027-01-04T06:00:00Z", "row_rejected", "ACME", source="payments.csv", row=3, error="amount: bad"),
]


class _Tables(HTMLParser):
    """Each <table> by id as rows of cell texts (entities decoded), and the <h3> heading above it."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self.headings: dict[str, str] = {}
        self._table: list[list[str]] | None = None
        self._cell: list[str] | None = None
        self._heading: list[str] | None = None
        self._last_heading = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "table":
            self._table = self.tables.setdefault(dict(attrs).get("id") or f"table-{len(self.tables)}", [])
            self.headings[next(reversed(self.tables))] = self._last_heading
        elif tag == "tr" and self._table is not None:
            self._table.append([])
        elif tag in ("td", "th") and self._table is not None:
            self._cell = []
        elif tag == "h3":
            self._heading = []
        elif tag == "h2":
            self._last_heading = ""

    def handle_endtag(self, tag: str) -> None:
        if tag == "table":
            self._table = None
        elif tag in ("td", "th") and self._table is not None and self._cell is not None:
            self._table[-1].append("".join(self._cell).strip())
            self._cell = None
        elif tag == "h3" and self._heading is not None:
            self._last_heading = "".join(self._heading).strip()
            self._heading = None

    def handle_data(self, data: str) -> None:
        for sink in (self._cell, self._heading):
            if sink is not None:
                sink.append(data)


@dataclass
class Page:
    html: str
    tables: dict[str, list[list[str]]] = field(default_factory=dict)
    headings: dict[str, str] = field(default_factory=dict)

    def timeline_of(self, account_id: str) -> list[list[str]]:
        [table] = [
            name
            for name, heading in self.headings.items()
            if name.endswith("-timeline") and heading.split(" — ")[0] == account_id
        ]
        return self.tables[table][1:]


def _page(events: list[dict[str, Any]] = EVENTS, start: date = START, end: date = END) -> Page:
    html = render_report(events=events, invoices=INVOICES, start=start, end=end)
    parser = _Tables()
    parser.feed(html)
    parser.close()
    return Page(html, parser.tables, parser.headings)


def test_the_page_is_one_self_contained_document() -> None:
    html = _page().html
    assert html.startswith('<!DOCTYPE html>\n<html lang="en">')
    assert html.rstrip().endswith("</html>")
    assert "<head>" in html and "<body>" in html and "<style>" in html and "<svg " in html
    lowered = html.lower()
    assert "<script" not in lowered
    assert "http://" not in lowered and "https://" not in lowered
    assert (
        "<link" not in lowered
        and "<img" not in lowered
        and "@import" not in lowered
        and "url(" not in lowered
    )


def test_the_summary_counts_what_happened() -> None:
    summary = dict((row[0], row[1]) for row in _page().tables["summary-table"])
    assert summary == {
        "Period": "2027-01-04 to 2027-03-31",
        "Accounts": "2",
        "Invoices": "6",
        "Notices sent": "1",
        "Notices skipped": "3",
        "skipped: paid": "2",
        "skipped: paused": "1",
        "Cases opened": "1",
        "Payments applied": "4",
        "Rows rejected": "2",
    }


BUCKET_EDGES = [
    (-5, "not yet due"),
    (0, "not yet due"),
    (1, "1-30"),
    (30, "1-30"),
    (31, "31-60"),
    (60, "31-60"),
    (61, "61-90"),
    (90, "61-90"),
    (91, "over 90"),
    (400, "over 90"),
]


@pytest.mark.parametrize(("days_past_due", "bucket"), BUCKET_EDGES)
def test_aging_buckets_are_days_past_due_at_the_end(days_past_due: int, bucket: str) -> None:
    assert aging_bucket(END - timedelta(days=days_past_due), END) == bucket


def test_aging_counts_open_outstanding_amounts_exactly_per_currency() -> None:
    buckets = aging(INVOICES, END)
    assert list(buckets) == ["EUR", "JPY"]
    assert list(buckets["EUR"]) == list(BUCKETS)
    eur = {name: (total.count, total.amount) for name, total in buckets["EUR"].items()}
    # A-3 is paid and A-5 is void: neither is owed. A-4 counts with what is left of it, not its amount.
    assert eur == {
        "not yet due": (1, Decimal("50.00")),
        "1-30": (1, Decimal("100.00")),
        "31-60": (0, Decimal(0)),
        "61-90": (1, Decimal("25.50")),
        "over 90": (0, Decimal(0)),
    }
    assert all(isinstance(total.amount, Decimal) for total in buckets["EUR"].values())
    assert buckets["JPY"]["over 90"].count == 1 and buckets["JPY"]["over 90"].amount == Decimal(5000)


def test_the_aging_tables_show_amounts_in_the_currency_minor_units() -> None:
    tables = _page().tables
    assert tables["aging-EUR"][1:] == [
        ["not yet due", "1", "50.00"],
        ["1-30", "1", "100.00"],
        ["31-60", "0", "0.00"],
        ["61-90", "1", "25.50"],
        ["over 90", "0", "0.00"],
        ["Total", "3", "175.50"],
    ]
    assert tables["aging-JPY"][-2:] == [["over 90", "1", "5000"], ["Total", "1", "5000"]]


def test_collected_amounts_are_summed_per_iso_week() -> None:
    [eur, jpy] = collected(EVENTS, START, END)
    weeks = {period.label.split(" ")[0]: amount for period, amount in eur.periods}
    # Monday 4 Jan to Sunday 10 Jan 23:00 UTC is one week; Monday 11 Jan starts the next.
    assert weeks["2027-W01"] == Decimal("50.50") and weeks["2027-W02"] == Decimal("10.00")
    assert eur.total == Decimal("60.50") and jpy.total == Decimal(1000)
    # Every week of the period is listed, so charts of different currencies line up.
    assert [period.first for period, _ in eur.periods] == [period.first for period, _ in jpy.periods]
    assert eur.periods[0][0].first == START and eur.periods[-1][0].first == date(2027, 3, 29)
    assert sum(amount for _, amount in eur.periods) == eur.total


def test_the_collected_table_and_chart_show_the_weekly_sums() -> None:
    page = _page()
    rows = page.tables["collected-EUR"]
    assert rows[1] == ["2027-W01 (2027-01-04 to 2027-01-10)", "50.50"]
    assert rows[2] == ["2027-W02 (2027-01-11 to 2027-01-17)", "10.00"]
    assert rows[-1] == ["Total", "60.50"]
    assert ["2027-W05 (2027-02-01 to 2027-02-07)", "1000"] in page.tables["collected-JPY"]
    # The largest week fills the chart; the others are scaled to it.
    assert "<title>2027-W01 (2027-01-04 to 2027-01-10): 50.50 EUR</title>" in page.html
    assert 'height="120.0"' in page.html


def test_a_short_period_is_shown_day_by_day_on_the_payment_date() -> None:
    events = [
        _event(
            "2027-01-05T07:00:00Z", "payment_applied", "ACME", invoice_id="A-1", amount="1.10", currency="EUR"
        ),
        _event(
            "2027-01-05T20:00:00Z", "payment_applied", "ACME", invoice_id="A-2", amount="2.20", currency="EUR"
        ),
        # Recorded late on the 5th in UTC, but the payment is dated the 6th (local midnight elsewhere).
        _event(
            "2027-01-05T22:00:00Z",
            "payment_applied",
            "ACME",
            invoice_id="A-2",
            amount="4.00",
            currency="EUR",
            paid_on="2027-01-06",
        ),
    ]
    [eur] = collected(events, START, START + timedelta(days=30))
    days = {period.label: amount for period, amount in eur.periods}
    assert len(days) == 31
    assert days["2027-01-05"] == Decimal("3.30") and days["2027-01-06"] == Decimal("4.00")
    assert days["2027-01-04"] == Decimal(0)
    assert "Collected per day" in _page(events, START, START + timedelta(days=30)).html


def test_customer_text_is_escaped() -> None:
    html = _page().html
    assert HOSTILE not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<b>x</b>" not in html and "&lt;b&gt;x&lt;/b&gt;" in html


def test_an_accounts_timeline_lists_its_events_in_time_order() -> None:
    rows = _page().timeline_of("ACME")
    assert [row[:2] for row in rows] == [
        ["2027-01-04 06:00", "row_rejected"],
        ["2027-01-05 07:00", "payment_applied"],
        ["2027-01-05 08:00", "notice_sent"],
        ["2027-01-06 08:00", "notice_skipped"],
        ["2027-01-08 08:00", "notice_skipped"],
        # Same instant: the logged order stands (the payment that settled the account comes first).
        ["2027-01-10 23:00", "payment_applied"],
        ["2027-01-10 23:00", "account_settled"],
        ["2027-01-11 09:00", "payment_applied"],
    ]
    assert rows[2][2] == "reminder — 120.50 EUR — invoices A-1, A-2 — to a@b.c"
    tokyo = _page().timeline_of("TOKYO")
    assert [row[1] for row in tokyo] == ["notice_skipped", "payment_applied", "case_opened"]
    assert tokyo[2][2] == "case CASE-TOKYO-1 — 5000 JPY"


def test_accounts_are_in_account_id_order_with_their_customer_names() -> None:
    headings = [heading for name, heading in _page().headings.items() if name.endswith("-timeline")]
    assert headings == ["ACME — Acme Ltd", f"TOKYO — {HOSTILE}"]


def test_rejected_rows_without_an_account_are_file_problems() -> None:
    page = _page()
    assert page.tables["file-problems-table"][1:] == [
        ["2027-01-04 06:00", "row_rejected", "invoices.csv row 5: amount: <b>x</b>"],
    ]
    # A rejected row that names its account stays on that account's timeline.
    assert ["2027-01-04 06:00", "row_rejected", "payments.csv row 3: amount: bad"] in page.timeline_of("ACME")


def test_without_file_problems_the_section_says_so() -> None:
    page = _page([event for event in EVENTS if event["account_id"]])
    assert "file-problems-table" not in page.tables
    assert '<h2 id="file-problems">File problems</h2>\n<p>None.</p>' in page.html


def test_the_same_input_gives_the_same_bytes() -> None:
    first = render_report(events=EVENTS, invoices=INVOICES, start=START, end=END)
    again = render_report(events=list(EVENTS), invoices=list(INVOICES), start=START, end=END)
    assert first.encode() == again.encode()


@pytest.mark.parametrize(
    ("event", "words"),
    [
        (
            {"type": "payment_applied", "invoice_id": "INV-1", "amount": "45.00", "currency": "EUR"},
            "45.00 EUR on INV-1",
        ),
        ({"type": "notice_skipped", "stage": "firm_notice", "reason": "paid"}, "firm_notice skipped: paid"),
        (
            {
                "type": "notice_sent",
                "stage": "final",
                "invoice_ids": ["B-7"],
                "amount_due": "9",
                "currency": "JPY",
            }
            | {"to": ["x@y.z", "w@y.z"]},
            "final — 9 JPY — invoice B-7 — to x@y.z, w@y.z",
        ),
        (
            {"type": "case_opened", "case_id": "CASE-1", "amount_due": "100.00", "currency": "EUR"},
            "case CASE-1 — 100.00 EUR",
        ),
        (
            {"type": "row_rejected", "source": "invoices.csv", "row": 5, "error": "due_on: bad"},
            "invoices.csv row 5: due_on: bad",
        ),
        ({"type": "promise_recorded", "until": "2027-02-19"}, "until 2027-02-19"),
        ({"type": "promise_broken", "until": "2027-02-19"}, "until 2027-02-19"),
        ({"type": "promise_kept", "until": "2027-02-19"}, "until 2027-02-19"),
        ({"type": "dispute_opened", "invoice_id": "INV-9"}, "INV-9"),
        ({"type": "dispute_resolved", "invoice_id": "INV-9"}, "INV-9"),
        (
            {"type": "credit_recorded", "invoice_id": "INV-1", "amount": "5.00", "currency": "EUR"},
            "credit 5.00 EUR on INV-1",
        ),
        ({"type": "account_paused"}, "until resumed"),
        ({"type": "account_settled"}, ""),
        ({"type": "something_new", "zeta": 1, "alpha": ["a", "b"]}, "alpha=a, b zeta=1"),
        # A known type with a key missing still describes what it has instead of failing the page.
        ({"type": "payment_applied", "amount": "1.00", "currency": "EUR"}, "1.00 EUR"),
    ],
)
def test_each_event_type_has_a_short_description(event: dict[str, Any], words: str) -> None:
    assert describe({"at": "2027-01-01T00:00:00Z", "account_id": "ACME", **event}) == words


def test_an_empty_simulation_still_renders() -> None:
    html = render_report(events=[], invoices=[], start=START, end=END)
    assert "Nothing outstanding." in html and "No payments applied." in html and "No accounts." in html


# The page's bytes for this module's inputs: the same as when the page was an HTML string in report.py, before
# it moved to templates/report.html.j2 (issue 11). Changing the page on purpose changes it: update it then
# (issue 13 added the worklist, month-end aging, DSO/CEI/realization, promises and payment plans).
PAGE_SHA256 = "d2c00fca8225e09e2e3a5cf5554279b9722dce539eff1527dd6cbafc6eb5d842"


def test_the_page_comes_from_the_packaged_template_byte_for_byte() -> None:
    assert (TEMPLATE_DIR / "report.html.j2").is_file()
    html = render_report(events=EVENTS, invoices=INVOICES, start=START, end=END)
    assert hashlib.sha256(html.encode("utf-8")).hexdigest() == PAGE_SHA256, (
        "report.html changed: if on purpose, set PAGE_SHA256 to the new digest"
    )
