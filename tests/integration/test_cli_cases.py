"""`dunning cases` against a deployed stack (moto): list, show, download with hash verification, and the
errors a legal team can act on."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from dunning.cli.main import main
from dunning.local.embedded_aws import LEGAL_BUCKET
from tests.support.collections import world
from tests.support.files import invoice_row

# Its module fixture runs a whole simulation: one worker runs every test here (make test: --dist loadgroup).
pytestmark = pytest.mark.xdist_group("test_cli_cases")

STACK = """
Resources:
  Ledger:
    Type: AWS::DynamoDB::Table
    Properties:
      BillingMode: PAY_PER_REQUEST
      AttributeDefinitions: [{AttributeName: PK, AttributeType: S}, {AttributeName: SK, AttributeType: S}]
      KeySchema: [{AttributeName: PK, KeyType: HASH}, {AttributeName: SK, KeyType: RANGE}]
  Legal:
    Type: AWS::S3::Bucket
Outputs:
  LedgerTableName: {Value: !Ref Ledger}
  LegalBucketName: {Value: !Ref Legal}
"""


@pytest.fixture(scope="module")
def case_packet() -> tuple[dict[str, object], bytes]:
    """A real case packet and its record, produced by the real ladder in the embedded AWS."""
    with world(date(2027, 2, 10)) as w:
        w.invoices(invoice_row("OLD", amount="100.00", due_on="2026-12-01", issued_on="2026-11-01"))
        w.run_through(date(2027, 3, 15))  # the demand letter, the final notice, the hand-off on 12 March
        (case,) = w.events("ACME", "case_opened")
        record = w.ledger.get("CASES", case["case_id"])
        assert record is not None
        packet = w.aws.s3.get_object(Bucket=LEGAL_BUCKET, Key=record["packet_key"])["Body"].read()
        return dict(record), packet


@pytest.fixture
def deployed(
    case_packet: tuple[dict[str, object], bytes], monkeypatch: pytest.MonkeyPatch
) -> Iterator[bytes]:
    record, packet = case_packet
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    with mock_aws():
        cloudformation = boto3.client("cloudformation", region_name="eu-west-1")
        cloudformation.create_stack(StackName="dunning", TemplateBody=STACK)
        outputs = {
            o["OutputKey"]: o["OutputValue"]
            for o in cloudformation.describe_stacks(StackName="dunning")["Stacks"][0]["Outputs"]
        }
        boto3.resource("dynamodb", region_name="eu-west-1").Table(outputs["LedgerTableName"]).put_item(
            Item=record
        )
        boto3.client("s3", region_name="eu-west-1").put_object(
            Bucket=outputs["LegalBucketName"], Key=str(record["packet_key"]), Body=packet
        )
        yield packet


def test_list_show_and_download_verify_the_packet(
    deployed: bytes,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    case_packet: tuple[dict[str, object], bytes],
) -> None:
    case_id = str(case_packet[0]["SK"])
    assert main(["cases", "list"]) == 0
    listing = capsys.readouterr().out
    assert case_id in listing and "100.00 EUR" in listing

    assert main(["cases", "show", case_id]) == 0
    assert str(case_packet[0]["packet_sha256"]) in capsys.readouterr().out

    assert main(["cases", "download", case_id, "--out", str(tmp_path)]) == 0
    assert "every file matches the SHA-256" in capsys.readouterr().out
    assert (tmp_path / f"{case_id}.zip").read_bytes() == deployed


def test_a_tampered_packet_is_refused(
    deployed: bytes,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    case_packet: tuple[dict[str, object], bytes],
) -> None:
    record = case_packet[0]
    source = zipfile.ZipFile(io.BytesIO(deployed))
    tampered = io.BytesIO()
    with zipfile.ZipFile(tampered, "w") as target:
        for info in source.infolist():
            data = source.read(info.filename)
            if info.filename == "contact_log.jsonl":
                data = data.replace(b"ACME", b"ACNE", 1)
            target.writestr(info, data)
    bucket = boto3.client("cloudformation", region_name="eu-west-1").describe_stacks(StackName="dunning")
    legal_bucket = {o["OutputKey"]: o["OutputValue"] for o in bucket["Stacks"][0]["Outputs"]}[
        "LegalBucketName"
    ]
    boto3.client("s3", region_name="eu-west-1").put_object(
        Bucket=legal_bucket, Key=str(record["packet_key"]), Body=tampered.getvalue()
    )

    assert main(["cases", "download", str(record["SK"]), "--out", str(tmp_path)]) == 1
    captured = capsys.readouterr()
    assert "does NOT match its manifest" in captured.err and "contact_log.jsonl" in captured.out


def test_unknown_case_and_missing_stack_are_one_line_errors(
    deployed: bytes, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["cases", "show", "CASE-NOPE"]) == 1
    assert "no case CASE-NOPE" in capsys.readouterr().err
    assert main(["cases", "--stack", "other", "list"]) == 1
    err = capsys.readouterr().err
    assert "no stack named other" in err and err.count("\n") == 1


def test_the_stack_options_may_also_come_after_the_action(
    deployed: bytes, capsys: pytest.CaptureFixture[str], case_packet: tuple[dict[str, object], bytes]
) -> None:
    case_id = str(case_packet[0]["SK"])
    assert main(["cases", "list", "--region", "eu-west-1", "--stack", "dunning"]) == 0
    assert case_id in capsys.readouterr().out
    assert main(["cases", "show", case_id, "--region", "eu-west-1"]) == 0
    assert case_id in capsys.readouterr().out
    # Given after the action, an option wins over the same option before it.
    assert main(["cases", "--stack", "dunning", "list", "--stack", "other"]) == 1
    assert "no stack named other" in capsys.readouterr().err
