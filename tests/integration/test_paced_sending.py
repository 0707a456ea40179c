"""Paced sending on the deployed state machine: the accounts of one day spread over the sending window,
each at its own moment (SendSpreadMinutes), and every send held to the account's SES rate (SesMaxSendRate),
with SES and Lambda throttling as real AWS does it: nothing fails, nothing is sent twice."""

from __future__ import annotations

from collections import Counter
from datetime import date

from tests.support.collections import world
from tests.support.files import invoice_row

ACCOUNTS = [f"ACC-{n:02d}" for n in range(16)]
DUE = "2027-02-10"  # uploaded on Thursday the 11th, a day overdue: the reminder goes that day
REMINDER_DAY = "2027-02-11"


def _rows() -> list[dict[str, str]]:
    return [invoice_row(f"I-{account}", account_id=account, due_on=DUE) for account in ACCOUNTS]


def test_the_days_reminders_are_spread_over_the_window_each_account_at_its_own_moment() -> None:
    with world(date(2027, 2, 11), parameters={}) as w:  # the template's defaults: a 240-minute spread
        w.invoices(*_rows())
        w.run_through(date(2027, 2, 11))

        sent = {account: w.notices(account) for account in ACCOUNTS}

    assert all(len(notices) == 1 for notices in sent.values()), "one reminder each, none twice"
    times = [notices[0][1] for notices in sent.values()]
    assert all(t.startswith(REMINDER_DAY) and "09:00" <= t[11:] < "13:00" for t in times)
    assert len(set(times)) > len(ACCOUNTS) // 2, "spread, not all at the opening"


def test_a_burst_over_the_ses_rate_and_lambda_concurrency_is_paced_and_nothing_fails() -> None:
    parameters = {"SendSpreadMinutes": "0", "SesMaxSendRate": "2"}  # all due at 09:00, 2 a second
    with world(date(2027, 2, 11), parameters=parameters, lambda_concurrency=3, ses_max_send_rate=2) as w:
        w.invoices(*_rows())
        w.run_through(date(2027, 2, 11))

        events = [e for account in ACCOUNTS for e in w.events(account)]
        throttles = w.aws.throttles

    sent = [e for e in events if e["type"] == "notice_sent" and e["at"].startswith(REMINDER_DAY)]
    assert [e["type"] for e in events if e["type"] == "workflow_failed"] == []
    assert sorted(e["account_id"] for e in sent) == ACCOUNTS, "every reminder, once"
    per_second = Counter(e["at"][:19] for e in sent)
    assert max(per_second.values()) <= 2, "never over the SES rate"
    assert throttles["lambda"] > 0, "the burst did meet Lambda's concurrency"
