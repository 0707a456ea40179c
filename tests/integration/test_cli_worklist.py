"""`dunning worklist` against a deployed stack (moto): the open tasks by priority, with the simulator's
columns, one owner's tasks, call scripts, and the errors a collector can act on."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from dunning.adapters.ledger import _paged
from dunning.cli.main import main
from dunning.domain.events import Event, EventType
from dunning.services import worklist
from tests.support.collections import world
from tests.support.files import invoice_row

# Its module fixture runs a whole simulation: one worker runs every test here (make test: --dist loadgroup).
pytestmark = pytest.mark.xdist_group("test_cli_worklist")

STACK = """
Resources:
  Ledger:
    Type: AWS::DynamoDB::Table
    Properties:
      BillingMode: PAY_PER_REQUEST
      AttributeDefinitions: [{AttributeName: PK, AttributeType: S}, {AttributeName: SK, AttributeType: S}]
      KeySchema: [{AttributeName: PK, KeyType: HASH}, {AttributeName: SK, KeyType: RANGE}]
  Ingest:
    Type: AWS::S3::Bucket
Outputs:
  LedgerTableName: {Value: !Ref Ledger}
  IngestBucketName: {Value: !Ref Ingest}
"""
POLICY = "collector: collections@example.com\n"
DAY = date(2027, 2, 22)  # +10 after 10 February is a Saturday: the call tasks are due on Monday the 22nd


LETTER_TASK = "T-letter-0123456789ab"
LETTER_KEY = f"notices/letters/{LETTER_TASK}.pdf"
LETTER_PDF = b"%PDF-1.7 the letter to post"


def _task(account: str, task_id: str, owner: str | None, kind: str = "review", **more: str) -> Event:
    at = datetime(2027, 2, 22, 10, 0, tzinfo=UTC)
    data = {"task_id": task_id, "kind": kind, "due_on": DAY.isoformat(), "owner": owner, "stage": "review"}
    return Event(at, EventType.TASK_CREATED, account, {**data, "currency": "EUR", **more}, identity=task_id)


@pytest.fixture(scope="module")
def deployed_ledger() -> tuple[list[dict[str, Any]], bytes, str]:
    """A ledger produced by the real ladder (two call tasks of the policy's collector), with a task of
    another owner, an unassigned one and one done; the policy in force; the worklist the simulator makes."""
    from dunning.cli.simulate import Worklists

    with world(date(2027, 2, 1), POLICY) as w:
        w.invoices(
            invoice_row("B-1", account_id="BIG", amount="900.00", due_on="2027-02-10", phone="+44 20 1234"),
            invoice_row("S-1", account_id="SMALL", amount="50.00", due_on="2027-02-10"),
        )
        w.run_through(DAY)
        calls = {e["account_id"]: e for e in w.ledger.all_events() if e["type"] == "task_created"}
        assert sorted(calls) == ["BIG", "SMALL"]
        done = Event(
            datetime(2027, 2, 22, 11, 0, tzinfo=UTC),
            EventType.TASK_DONE,
            "SMALL",
            {"task_id": calls["SMALL"]["task_id"], "outcome": "reached"},
            identity="done",
        )
        letter = _task("BIG", LETTER_TASK, "Mia@Example.com", "letter", letter=LETTER_KEY)
        w.ledger.append_events(
            [_task("BIG", "T-MIA", "Mia@Example.com"), _task("SMALL", "T-NOBODY", None), letter, done]
        )
        w.aws.s3.put_object(Bucket=w.aws.bucket, Key=LETTER_KEY, Body=LETTER_PDF)
        worklists = Worklists(w.aws, w.sim.policy, None)
        worklists.day_ended(DAY)
        items = list(_paged(w.aws.dynamodb.Table(w.aws.table_name).scan))
        policy = w.aws.s3.get_object(Bucket=w.aws.bucket, Key="config/active-policy.json")["Body"].read()
        return items, policy, worklists.days[DAY]


@pytest.fixture
def deployed(
    deployed_ledger: tuple[list[dict[str, Any]], bytes, str], monkeypatch: pytest.MonkeyPatch
) -> Iterator[str]:
    items, policy, simulated = deployed_ledger
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    with mock_aws():
        cloudformation = boto3.client("cloudformation", region_name="eu-west-1")
        cloudformation.create_stack(StackName="dunning", TemplateBody=STACK)
        outputs = {
            o["OutputKey"]: o["OutputValue"]
            for o in cloudformation.describe_stacks(StackName="dunning")["Stacks"][0]["Outputs"]
        }
        table = boto3.resource("dynamodb", region_name="eu-west-1").Table(outputs["LedgerTableName"])
        with table.batch_writer() as batch:
            for item in items:
                batch.put_item(Item=item)
        s3 = boto3.client("s3", region_name="eu-west-1")
        s3.put_object(Bucket=outputs["IngestBucketName"], Key="config/active-policy.json", Body=policy)
        s3.put_object(Bucket=outputs["IngestBucketName"], Key=LETTER_KEY, Body=LETTER_PDF)
        yield simulated


def _rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def test_the_worklist_is_the_simulators_by_priority_without_done_tasks(
    deployed: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["worklist", "--on", DAY.isoformat()]) == 0
    out = capsys.readouterr().out
    rows = _rows(out)
    assert list(rows[0]) == list(worklist.COLUMNS)
    assert sorted((r["account_id"], r["owner"], r["kind"]) for r in rows) == [
        ("BIG", "Mia@Example.com", "letter"),
        ("BIG", "Mia@Example.com", "review"),
        ("BIG", "collections@example.com", "call"),
        ("SMALL", "", "review"),
    ], "the done task is gone; the unassigned one is shown"
    bucket = boto3.client("cloudformation").describe_stacks(StackName="dunning")["Stacks"][0]["Outputs"]
    [letter_row] = [r for r in rows if r["kind"] == "letter"]
    assert letter_row["letter"] in {f"s3://{o['OutputValue']}/{LETTER_KEY}" for o in bucket}
    simulated = [{**row, "script": "", "letter": ""} for row in _rows(deployed)]
    assert [{**row, "letter": ""} for row in rows] == simulated, "the rows, in the order, of OUT/worklist.csv"
    [big] = [r for r in rows if r["kind"] == "call"]
    assert (big["amount_due"], big["currency"], big["days_overdue"]) == ("900.00", "EUR", "12")
    assert big["phone"] == "'+44 20 1234", "formula-safe, as the simulator writes it"


def test_one_owners_tasks_case_insensitively_and_scripts_written(
    deployed: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["worklist", "--on", DAY.isoformat(), "--owner", "mia@EXAMPLE.com"]) == 0
    assert {r["task_id"] for r in _rows(capsys.readouterr().out)} == {LETTER_TASK, "T-MIA"}

    out_file, scripts = tmp_path / "mine.csv", tmp_path / "scripts"
    args = ["worklist", "--on", DAY.isoformat(), "--owner", "COLLECTIONS@example.com"]
    assert main([*args, "--out", str(out_file), "--scripts", str(scripts)]) == 0
    [row] = _rows(out_file.read_text(encoding="utf-8"))
    assert row["account_id"] == "BIG" and row["kind"] == "call"
    script = Path(row["script"])
    assert script.parent == scripts and script.name == f"{row['task_id']}.txt"
    assert "BIG Ltd" in script.read_text(encoding="utf-8")


def test_the_letters_to_post_are_downloaded_where_the_letter_column_says(
    deployed: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    letters = tmp_path / "letters"
    assert main(["worklist", "--on", DAY.isoformat(), "--letters", str(letters)]) == 0
    [row] = [r for r in _rows(capsys.readouterr().out) if r["kind"] == "letter"]
    assert row["letter"] == (letters / f"{LETTER_TASK}.pdf").as_posix()
    assert Path(row["letter"]).read_bytes() == LETTER_PDF
    assert [r["letter"] for r in _rows(deployed) if r["kind"] == "letter"] == [f"letters/{LETTER_TASK}.pdf"]


def test_unknown_stack_and_denied_credentials_are_one_line_errors(
    deployed: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert main(["worklist", "--stack", "other"]) == 1
    err = capsys.readouterr().err
    assert "no stack named other" in err and err.count("\n") == 1

    assert main(["worklist", "--profile", "nobody"]) == 1
    err = capsys.readouterr().err
    assert "nobody" in err and err.count("\n") == 1


def test_a_denied_read_is_a_one_line_error(
    deployed: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from botocore.exceptions import ClientError

    from dunning.adapters.ledger import Ledger

    def denied(self: Ledger) -> list[dict[str, Any]]:
        error = {
            "Error": {"Code": "AccessDeniedException", "Message": "not authorized to perform dynamodb:Scan"}
        }
        raise ClientError(error, "Scan")

    monkeypatch.setattr(Ledger, "all_events", denied)
    assert main(["worklist"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("dunning: error: not allowed: not authorized") and err.count("\n") == 1
