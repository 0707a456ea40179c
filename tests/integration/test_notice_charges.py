"""Fees and statutory interest on the notices that mention them, through the real state machine."""

from __future__ import annotations

from datetime import date

from tests.support.collections import world
from tests.support.files import invoice_row


def test_late_fees_and_statutory_interest_appear_on_the_notices_that_mention_them() -> None:
    policy = "charges:\n  statutory_interest: eu\n  late_fees: [{stage: firm_notice, flat: {EUR: '25.00'}}]\n"
    with world(date(2024, 6, 3), policy=policy) as w:
        w.invoices(invoice_row("E-1", amount="1000.00", due_on="2024-05-31", issued_on="2024-05-01"))
        w.run_through(date(2024, 6, 20))

        firm = next(m for m in w.sent_emails() if m["X-Dunning-Notice"] == "EUR/0/firm_notice")
        text = firm.get_body(("plain",)).get_content()  # type: ignore[union-attr]
        # 14 June: 14 days at 4.50 + 8 = 12.50% on 1,000.00 -> 1000 * 0.125 * 14 / 365 = 4.79
        assert "4.79" in text and "25.00" in text and "40.00" in text
        earlier = next(m for m in w.sent_emails() if m["X-Dunning-Notice"] == "EUR/0/reminder")
        assert "40.00" not in earlier.get_body(("plain",)).get_content()  # type: ignore[union-attr]
