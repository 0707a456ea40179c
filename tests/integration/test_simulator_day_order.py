"""The simulator's order within a day (CONTRACT 2): payments and actions dated D take effect at the start of
day D in the business time zone, before anything is sent that day, even a notice whose slot opens at that
very instant."""

from __future__ import annotations

from datetime import date

from tests.support.collections import world
from tests.support.files import invoice_row

LONDON = "business_timezone: Europe/London\n"
TOKYO_INVOICE = invoice_row(
    "T-1", "TOKYO", amount="1000", currency="JPY", due_on="2027-02-10", timezone="Asia/Tokyo", country="JP"
)


def test_a_payment_dated_d_is_applied_before_a_notice_due_at_the_first_instant_of_d() -> None:
    # Tokyo is London + 9 in February: the customer's 09:00 window opens at 00:00 London. Due Wednesday
    # 10 Feb, pre_due (-3) is Sunday 7 Feb, so its slot is Monday 8 Feb 09:00 Tokyo = 00:00 London, the
    # instant the payment dated 8 Feb goes in.
    with world(date(2027, 2, 1), policy=LONDON) as w:
        w.invoices(TOKYO_INVOICE)
        w.payment("TOKYO", "T-1", "1000", date(2027, 2, 8))
        w.run_through(date(2027, 2, 9))

        (applied,) = w.events("TOKYO", "payment_applied")
        assert applied["at"] == "2027-02-08T00:00:00Z"
        assert w.notices("TOKYO") == []
        assert w.sent_emails() == []
        assert len(w.events("TOKYO", "account_settled")) == 1


def test_without_the_payment_that_notice_goes_out_at_00_00_london() -> None:
    """The control: the slot really is the first instant of the payment's day."""
    with world(date(2027, 2, 1), policy=LONDON) as w:
        w.invoices(TOKYO_INVOICE)
        w.run_through(date(2027, 2, 9))

        assert w.notices("TOKYO") == [("pre_due", "2027-02-08 00:00")]
