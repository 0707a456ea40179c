"""Collector tasks on the deployed state machine (CONTRACT 9): a policy naming a collector gets a call task
at +10, in the customer's language, on a worklist a person can use; a customer who paid drops off it."""

from __future__ import annotations

import csv
import io
from datetime import date

from dunning.cli.simulate import Worklists
from dunning.local.simulator import Upload
from tests.support.collections import PAYMENT_HEADER, world
from tests.support.files import csv_bytes, invoice_row, invoices_csv

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
