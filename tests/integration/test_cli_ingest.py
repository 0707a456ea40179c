"""`dunning ingest` runs the deployed ingest path locally and tells the accountant what happened."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dunning.cli.main import main
from tests.support.files import invoice_row, invoices_csv

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_the_bundled_examples_import_with_their_deliberate_mistakes_reported(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status = main(
        [
            "ingest",
            "--invoices",
            str(EXAMPLES / "invoices.csv"),
            "--invoices",
            str(EXAMPLES / "xero_export.csv"),
            "--payments",
            str(EXAMPLES / "payments.csv"),
            "--actions",
            str(EXAMPLES / "actions.csv"),
            "--documents",
            str(EXAMPLES / "documents"),
            "--at",
            "2026-12-01",
            "--out",
            str(tmp_path),
        ]
    )

    out = capsys.readouterr().out
    assert status == 0
    assert "row 11, amount: has more decimals than JPY allows" in out
    assert "row 6, DueDate: '31/11/2026' is not a real calendar date" in out
    assert sorted(p.name for p in (tmp_path / "rejected").iterdir()) == [
        "actions.csv.errors.csv",
        "invoices.csv.errors.csv",
        "payments.csv.errors.csv",
        "xero_export.csv.errors.csv",
    ]
    events = [json.loads(line) for line in (tmp_path / "events.jsonl").read_text().splitlines()]
    assert all({"at", "type", "account_id"} <= event.keys() for event in events)
    assert [e["at"] for e in events] == sorted(e["at"] for e in events)
    assert {"invoice_imported", "row_rejected", "payment_applied", "dispute_opened"} <= {
        e["type"] for e in events
    }


def test_a_missing_file_is_one_line_and_exit_status_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status = main(["ingest", "--invoices", str(tmp_path / "nope.csv")])

    err = capsys.readouterr().err
    assert status == 2
    assert err.count("\n") == 1 and "nope.csv" in err and "Traceback" not in err


def test_a_bad_policy_is_one_line_and_exit_status_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text("default_locale: [\n")
    invoices = tmp_path / "i.csv"
    invoices.write_bytes(invoices_csv(invoice_row()))

    status = main(["ingest", "--invoices", str(invoices), "--policy", str(policy)])

    err = capsys.readouterr().err
    assert status == 2 and err.startswith("dunning: error:") and err.count("\n") == 1


def test_policy_settings_reach_the_ingest(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    policy = tmp_path / "policy.json"
    policy.write_text('{"default_locale": "hu", "business_timezone": "Europe/Budapest"}')
    invoices = tmp_path / "i.csv"
    invoices.write_bytes(invoices_csv(invoice_row(amount="x")))

    assert main(["ingest", "--invoices", str(invoices), "--policy", str(policy), "--out", str(tmp_path)]) == 0
    assert "row 2, amount" in capsys.readouterr().out
