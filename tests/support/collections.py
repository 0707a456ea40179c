"""Running accounts through the real state machine on simulated days, and reading what happened."""

from __future__ import annotations

import email
import email.policy
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from dunning.adapters.ledger import Ledger
from dunning.domain.policy import DEFAULT_POLICY, Policy, parse_policy
from dunning.local.embedded_aws import EmbeddedAws, embedded_aws
from dunning.local.simulator import Simulation, Upload
from tests.support.files import csv_bytes, invoices_csv

PAYMENT_HEADER = ["account_id", "invoice_id", "amount", "paid_on"]
ACTION_HEADER = [
    "account_id", "action", "on", "until", "invoice_id", "note", "outcome", "amount", "instalments", "task_id"
]  # fmt: skip
# The emails about an agreement, outside the ladder's rungs (CONTRACT 9, 10).
AGREEMENT_EMAILS = ("agreement_confirmation", "instalment_reminder")


@dataclass
class World:
    aws: EmbeddedAws
    sim: Simulation
    ledger: Ledger
    first_day: date
    day: date

    def invoices(self, *rows: dict[str, str], on: date | None = None) -> None:
        self.sim.schedule(
            on or self.day, Upload("invoices", f"invoices-{len(self.sim.uploads)}.csv", invoices_csv(*rows))
        )

    def payment(self, account: str, invoice: str, amount: str, on: date) -> None:
        body = csv_bytes(PAYMENT_HEADER, [[account, invoice, amount, on.isoformat()]])
        self.sim.schedule(on, Upload("payments", f"payment-{account}-{invoice}-{on}.csv", body))

    def action(
        self,
        account: str,
        action: str,
        on: date,
        until: str = "",
        invoice: str = "",
        *,
        outcome: str = "",
        amount: str = "",
        instalments: str = "",
        task_id: str = "",
    ) -> None:
        row = [account, action, on.isoformat(), until, invoice, "", outcome, amount, instalments, task_id]
        body = csv_bytes(ACTION_HEADER, [row])
        name = f"action-{account}-{action}-{on}-{len(self.sim.uploads)}.csv"
        self.sim.schedule(on, Upload("actions", name, body))

    def run_through(self, last: date) -> None:
        while self.day <= last:
            self.sim.run_day(self.day)
            self.day += timedelta(days=1)
        self.sim.run_until_day(self.day)

    def events(self, account: str, *types: str) -> list[dict[str, Any]]:
        return [e for e in self.ledger.events(account) if not types or e["type"] in types]

    def notices(self, account: str) -> list[tuple[str, str]]:
        """(stage, send time 'YYYY-MM-DD HH:MM' in UTC) of every ladder notice sent, in order (not the
        emails about an agreement: agreement_emails)."""
        sent = self.events(account, "notice_sent")
        return [
            (e["stage"], e["at"][:16].replace("T", " ")) for e in sent if e["stage"] not in AGREEMENT_EMAILS
        ]

    def agreement_emails(self, account: str) -> list[tuple[str, str]]:
        """(stage, send time in UTC) of every agreement confirmation and instalment reminder sent."""
        sent = self.events(account, "notice_sent")
        return [(e["stage"], e["at"][:16].replace("T", " ")) for e in sent if e["stage"] in AGREEMENT_EMAILS]

    def sent_emails(self) -> list[email.message.EmailMessage]:
        """Every message SES accepted (moto's record), parsed."""
        from moto.ses.models import ses_backends

        backend = ses_backends["123456789012"]["eu-west-1"]
        messages: list[email.message.EmailMessage] = [
            email.message_from_string(message.raw_data, policy=email.policy.default)
            for message in backend.sent_messages
        ]
        return messages


EXACT_TIMES: Mapping[str, str] = {"SendSpreadMinutes": "0"}


@contextmanager
def world(
    first_day: date,
    policy: Policy | str = DEFAULT_POLICY,
    *,
    ses_sandbox: bool = False,
    ses_verified: tuple[str, ...] = (),
    template: dict[str, Any] | None = None,
    parameters: Mapping[str, str] = EXACT_TIMES,
    **limits: Any,
) -> Iterator[World]:
    """A stack deployed with `parameters`: by default with every notice at the window's opening (no send
    spread), so that a test can say when a notice goes out; tests/integration/test_paced_sending.py runs the
    template's defaults. `limits`: embedded_aws's limits under load (Lambda concurrency, SES's rate)."""
    chosen = parse_policy(policy) if isinstance(policy, str) else policy
    start = datetime.combine(first_day, datetime.min.time(), tzinfo=UTC) - timedelta(days=1)
    with embedded_aws(
        start,
        ses_sandbox=ses_sandbox,
        ses_verified=ses_verified,
        template=template,
        parameters=parameters,
        **limits,
    ) as aws:
        if isinstance(policy, str):
            aws.use_policy(policy.encode())
        yield World(aws, Simulation(aws, chosen), Ledger(aws.dynamodb, aws.table_name), first_day, first_day)
