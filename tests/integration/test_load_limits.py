"""The deployed state machine and functions under AWS's limits (issue 12): with Lambda's concurrency and SES's
send rate modelled in the embedded AWS, executions started together are throttled, and the state machine's
own Retry still gets every notice out, once, at no more than SES's rate. (Whether SES refuses any depends on
how the sends are spread; tests/unit/test_embedded_throttling.py shows a refused send retried.)"""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, timedelta

from dunning.adapters.ledger import Ledger
from dunning.domain.policy import DEFAULT_POLICY
from dunning.local.embedded_aws import embedded_aws
from dunning.local.simulator import Simulation
from tests.support.collections import World
from tests.support.files import invoice_row

FIRST_DAY = date(2027, 2, 1)
ACCOUNTS = [f"BURST{n}" for n in range(8)]  # due Wed 10 Feb: every pre_due falls on Mon 8 Feb
SES_RATE = 0.2
LAMBDA_CONCURRENCY = 1  # the day's scan starts every execution at one instant: their decisions collide


def test_notices_due_together_all_go_out_once_through_throttling() -> None:
    start = datetime.combine(FIRST_DAY, datetime.min.time(), tzinfo=UTC) - timedelta(days=1)
    with embedded_aws(start, lambda_concurrency=LAMBDA_CONCURRENCY, ses_max_send_rate=SES_RATE) as aws:
        w = World(
            aws, Simulation(aws, DEFAULT_POLICY), Ledger(aws.dynamodb, aws.table_name), FIRST_DAY, FIRST_DAY
        )
        w.invoices(*(invoice_row(f"I-{account}", account, due_on="2027-02-10") for account in ACCOUNTS))
        w.run_through(date(2027, 2, 8))

        sent = {account: w.events(account, "notice_sent") for account in ACCOUNTS}
        failed = [e for account in ACCOUNTS for e in w.events(account, "workflow_failed", "notice_failed")]
        throttles = aws.throttles
        concurrency = aws.lambda_concurrency
        accepted = len(w.sent_emails())

    assert failed == []
    assert {account: [e["stage"] for e in events] for account, events in sent.items()} == {
        account: ["pre_due"] for account in ACCOUNTS
    }
    assert accepted == len(ACCOUNTS)
    assert throttles["lambda"] > 0, throttles
    assert concurrency.peak == LAMBDA_CONCURRENCY
    times = sorted(datetime.fromisoformat(e["at"]) for events in sent.values() for e in events)
    assert all(
        later - earlier >= timedelta(seconds=1 / SES_RATE) for earlier, later in itertools.pairwise(times)
    ), "SES took them at its rate"
