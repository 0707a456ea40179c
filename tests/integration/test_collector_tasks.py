"""Collector tasks on the deployed state machine (CONTRACT 9): a policy naming a collector gets a call task
at +10, in the customer's language, on a worklist a person can use; a customer who paid drops off it. A
letter stage prints the letter with the debtor's address for a person to post."""

from __future__ import annotations

import csv
import io
from datetime import date
from pathlib import Path

from dunning.cli.simulate import Worklists
from dunning.local.simulator import Upload
from tests.support.collections import PAYMENT_HEADER, world
from tests.support.files import csv_bytes, invoice_row, invoices_csv
from tests.support.notices import pdf_text

POLICY = "collector: collections@example.com\n"


def test_a_call_task_at_plus_ten_in_the_customers_language_on_the_worklist_until_they_pay() -> None:
    with world(date(2027, 2, 1), POLICY) as w:
        worklists = Worklists(w.aws, w.sim.policy, None)
        body = invoices_csv(
            invoice_row("R-1", account_id="NEVA", amount="900.00", due_on="2027-02-10", locale="ru",
                        timezone="Europe/Moscow", phone="+7 495 123-45-67"),
            invoice_row("E-1", account_id="SMALL", amount="50.00", due_on="2027-02-10"),
        )  # fmt: skip
        w.sim.schedule(date(2027, 2, 1), Upload("invoices", "invoices.csv", body))
        paid = csv_bytes(PAYMENT_HEADER, [["SMALL", "E-1", "50.00", "2027-02-24"]])
        w.sim.schedule(date(2027, 2, 24), Upload("payments", "paid.csv", paid))
        w.sim.run(date(2027, 2, 1), 28, day_ended=worklists.day_ended)

        created = {e["account_id"]: e for e in w.ledger.all_events() if e["type"] == "task_created"}
        assert sorted(created) == ["NEVA", "SMALL"]
        assert created["NEVA"]["due_on"] == "2027-02-22", "+10 is a Saturday: Monday"
        assert created["NEVA"]["owner"] == "collections@example.com" and created["NEVA"]["kind"] == "call"
        assert [s for s, _ in w.notices("NEVA")] == ["pre_due", "reminder", "second_reminder", "firm_notice"]

        on_the_22nd = list(csv.DictReader(io.StringIO(worklists.days[date(2027, 2, 22)])))
        assert [row["account_id"] for row in on_the_22nd] == ["NEVA", "SMALL"], "by priority: the larger debt"
        neva = on_the_22nd[0]
        assert (neva["amount_due"], neva["currency"], neva["days_overdue"]) == ("900.00", "EUR", "12")
        assert neva["phone"] == "'+7 495 123-45-67", "shown as text in a spreadsheet, never run"
        [text] = [t for path, t in worklists.scripts.items() if path.name == f"{neva['task_id']}.txt"]
        assert text.startswith("Сценарий звонка") and "Мы не получали счёт" in text, "in Russian"

        at_the_end = [
            row["account_id"] for row in csv.DictReader(io.StringIO(worklists.days[date(2027, 2, 28)]))
        ]
        assert at_the_end == ["NEVA"], "SMALL paid: nobody calls them"


LETTER_POLICY = """
collector: collections@example.com
ladder:
  stages:
    - {name: reminder, day: 1}
    - {name: posted_demand, day: 10, channel: letter, template: demand_letter}
    - {name: firm_notice, day: 20}
"""


def test_a_letter_to_post_is_printed_with_the_debtors_address_linked_from_the_worklist_until_posted() -> None:
    with world(date(2027, 2, 1), LETTER_POLICY) as w:
        worklists = Worklists(w.aws, w.sim.policy, None)
        w.invoices(
            invoice_row("C-1", account_id="CLUJ", amount="740.00", due_on="2027-02-10", locale="ro-RO",
                        address_line1="Strada Memorandumului 28", city="Cluj-Napoca", postal_code="400114"),
        )  # fmt: skip
        w.sim.run(date(2027, 2, 1), 22, day_ended=worklists.day_ended)

        [created] = w.events("CLUJ", "task_created")
        assert (created["kind"], created["stage"], created["due_on"]) == (
            "letter",
            "posted_demand",
            "2027-02-22",
        )
        assert (created["amount_due"], created["currency"]) == ("740.00", "EUR"), "what the letter demands"
        [row] = csv.DictReader(io.StringIO(worklists.days[date(2027, 2, 22)]))
        assert (row["kind"], row["task_id"]) == ("letter", created["task_id"])
        assert row["letter"] == f"letters/{created['task_id']}.pdf"
        letter = pdf_text(worklists.letters[Path(row["letter"])])
        for printed in ("CLUJ Ltd", "Strada Memorandumului 28", "Cluj-Napoca", "400114", "C-1", "740,00"):
            assert printed in letter
        assert [stage for stage, _ in w.notices("CLUJ")] == ["reminder"], "posted, not emailed"

        w.action("CLUJ", "posted", date(2027, 2, 23))
        w.sim.run(date(2027, 2, 23), 1, day_ended=worklists.day_ended)

        [done] = w.events("CLUJ", "task_done")
        assert (done["task_id"], done["kind"], done["outcome"]) == (created["task_id"], "letter", "posted")
        assert list(csv.DictReader(io.StringIO(worklists.days[date(2027, 2, 23)]))) == []
