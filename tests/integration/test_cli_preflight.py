"""`dunning preflight` against a deployed stack (moto): one line per check, exit status 0 / 1 / 2.

moto has no SES v2 account API, so the SES client is a fake with the account and identity of each test;
CloudFormation, S3 and SNS are moto's."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from dunning.cli import preflight
from dunning.cli.main import main
from dunning.domain.policy import parse_policy

REGION = "eu-west-1"
STACK = """
Parameters:
  ScanSchedule: {Type: String, Default: "cron(0 7 * * ? *)"}
  BusinessTimezone: {Type: String, Default: Europe/London}
Resources:
  Ingest:
    Type: AWS::S3::Bucket
  Alerts:
    Type: AWS::SNS::Topic
Outputs:
  IngestBucketName: {Value: !Ref Ingest}
  AlertTopicArn: {Value: !Ref Alerts}
  PolicyKey: {Value: config/policy.yaml}
  SenderIdentityName: {Value: yourcompany.example}
"""
GOOD_POLICY = b'sender: "Accounts Receivable <billing@yourcompany.example>"\n'


@dataclass
class FakeSes:
    """What sesv2 GetAccount and GetEmailIdentity answer for a ready account."""

    account: dict[str, Any] = field(
        default_factory=lambda: {"ProductionAccessEnabled": True, "SendingEnabled": True}
    )
    identities: dict[str, dict[str, Any]] = field(
        default_factory=lambda: {
            "yourcompany.example": {
                "IdentityType": "DOMAIN",
                "VerifiedForSendingStatus": True,
                "DkimAttributes": {"SigningEnabled": True, "Status": "SUCCESS"},
            }
        }
    )
    denied: bool = False

    def get_account(self) -> dict[str, Any]:
        if self.denied:
            raise ClientError({"Error": {"Code": "AccessDeniedException", "Message": "no"}}, "GetAccount")
        return self.account

    def get_email_identity(self, EmailIdentity: str) -> dict[str, Any]:
        if EmailIdentity not in self.identities:
            raise ClientError({"Error": {"Code": "NotFoundException", "Message": ""}}, "GetEmailIdentity")
        return self.identities[EmailIdentity]


class PendingSns:
    """moto confirms every subscription at once; this one reports them as a fresh email one would be."""

    def __init__(self, real: Any) -> None:
        self._real = real

    def get_paginator(self, name: str) -> Any:
        real = self._real.get_paginator(name)

        class Pages:
            def paginate(self, **kwargs: Any) -> Iterator[dict[str, Any]]:
                for page in real.paginate(**kwargs):
                    for subscription in page.get("Subscriptions", []):
                        subscription["SubscriptionArn"] = "PendingConfirmation"
                    yield page

        return Pages()


@dataclass
class Deployed:
    ses: FakeSes
    outputs: dict[str, str]
    pending: bool = False

    def subscribe(self, address: str = "ops@yourcompany.example") -> None:
        boto3.client("sns", region_name=REGION).subscribe(
            TopicArn=self.outputs["AlertTopicArn"], Protocol="email", Endpoint=address
        )

    def upload_policy(self, body: bytes) -> None:
        boto3.client("s3", region_name=REGION).put_object(
            Bucket=self.outputs["IngestBucketName"], Key=self.outputs["PolicyKey"], Body=body
        )

    def ready(self, policy: bytes = GOOD_POLICY) -> None:
        """The policy uploaded and the alerts subscribed: what a stack ready to go live has."""
        self.upload_policy(policy)
        self.subscribe()


@pytest.fixture
def deployed(monkeypatch: pytest.MonkeyPatch) -> Iterator[Deployed]:
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    with mock_aws():
        cloudformation = boto3.client("cloudformation", region_name=REGION)
        cloudformation.create_stack(StackName="dunning", TemplateBody=STACK)
        outputs = {
            o["OutputKey"]: o["OutputValue"]
            for o in cloudformation.describe_stacks(StackName="dunning")["Stacks"][0]["Outputs"]
        }
        stack = Deployed(FakeSes(), outputs)
        real_client = preflight._client

        def client(session: Any, service: str) -> Any:
            if service == "sesv2":
                return stack.ses
            if service == "sns" and stack.pending:
                return PendingSns(real_client(session, service))
            return real_client(session, service)

        monkeypatch.setattr(preflight, "_client", client)
        yield stack


def _lines(capsys: pytest.CaptureFixture[str]) -> list[str]:
    return capsys.readouterr().out.splitlines()


def _status(lines: list[str], check: str) -> str:
    (line,) = [line for line in lines if line.split(maxsplit=1)[1].startswith(check)]
    return line.split()[0]


def test_a_ready_stack_passes_every_check(deployed: Deployed, capsys: pytest.CaptureFixture[str]) -> None:
    deployed.ready()

    assert main(["preflight", "--stack", "dunning"]) == 0

    lines = _lines(capsys)
    checks = [line for line in lines if line.split()[0] in {"OK", "WARN", "FAIL"}]
    assert [line.split()[0] for line in checks] == ["OK"] * 7, lines
    for name in (
        "SES production access",
        "SES sending",
        "sender identity yourcompany.example",
        "DKIM for yourcompany.example",
        "policy s3://",
        "policy sender",
        "alert subscription",
    ):
        assert _status(lines, name) == "OK", name
    assert lines[-1] == "Ready to go live."


def test_the_sandbox_paused_sending_and_an_unverified_identity_fail_with_what_to_do(
    deployed: Deployed, capsys: pytest.CaptureFixture[str]
) -> None:
    deployed.ready()
    deployed.ses.account = {"ProductionAccessEnabled": False, "SendingEnabled": False}
    deployed.ses.identities["yourcompany.example"] = {
        "IdentityType": "DOMAIN",
        "VerifiedForSendingStatus": False,
        "DkimAttributes": {"SigningEnabled": True, "Status": "PENDING"},
    }

    assert main(["preflight"]) == 1

    lines = _lines(capsys)
    for name in ("SES production access", "SES sending", "sender identity", "DKIM for"):
        assert _status(lines, name) == "FAIL", name
    (sandbox,) = [line for line in lines if "SES production access" in line]
    assert "sandbox" in sandbox and "-> request production access" in sandbox
    (dkim,) = [line for line in lines if "DKIM for" in line]
    assert "PENDING" in dkim and "CNAME" in dkim
    assert "failed: not ready to go live" in lines[-1]


def test_an_identity_missing_from_ses_fails(deployed: Deployed, capsys: pytest.CaptureFixture[str]) -> None:
    deployed.ready()
    deployed.ses.identities.clear()

    assert main(["preflight"]) == 1
    (line,) = [line for line in _lines(capsys) if "sender identity yourcompany.example:" in line]
    assert line.startswith("FAIL") and "not in SES" in line


def test_a_missing_policy_is_a_warning_that_the_defaults_are_in_force(
    deployed: Deployed, capsys: pytest.CaptureFixture[str]
) -> None:
    deployed.subscribe()

    assert main(["preflight"]) == 0

    lines = _lines(capsys)
    assert _status(lines, "policy s3://") == "WARN"
    (line,) = [line for line in lines if line.startswith("WARN")]
    assert "defaults are in force" in line and "dunning ingest --policy" in line
    assert lines[-1] == "Ready to go live (1 warning(s))."


def test_an_invalid_policy_fails_with_the_setting_and_the_reason(
    deployed: Deployed, capsys: pytest.CaptureFixture[str]
) -> None:
    deployed.ready(b"min_gap_days: soon\n")

    assert main(["preflight"]) == 1

    (line,) = [line for line in _lines(capsys) if "policy s3://" in line]
    assert line.startswith("FAIL") and "min_gap_days" in line and "invalid" in line


def test_a_policy_sender_outside_the_identity_fails(
    deployed: Deployed, capsys: pytest.CaptureFixture[str]
) -> None:
    deployed.ready(b'sender: "AR <billing@othercompany.example>"\n')

    assert main(["preflight"]) == 1
    lines = _lines(capsys)
    assert _status(lines, "policy s3://") == "OK"
    assert _status(lines, "policy sender") == "FAIL"


@pytest.mark.parametrize(
    ("scan_time", "status", "last"),
    [("05:30", "WARN", "Ready to go live (1 warning(s))."), ("07:00", "OK", "Ready to go live.")],
)
def test_a_policy_scan_time_is_not_used_and_a_different_one_is_a_warning(
    scan_time: str, status: str, last: str, deployed: Deployed, capsys: pytest.CaptureFixture[str]
) -> None:
    deployed.ready(GOOD_POLICY + f'scan_time: "{scan_time}"\n'.encode())

    assert main(["preflight"]) == 0

    lines = _lines(capsys)
    assert _status(lines, "policy scan_time") == status
    assert lines[-1] == last
    if status == "WARN":
        (line,) = [line for line in lines if "policy scan_time" in line]
        assert "05:30 is not used" in line and "cron(0 7 * * ? *) (07:00 Europe/London)" in line
        assert "-> remove scan_time from the policy" in line


def test_a_policy_scan_time_against_a_stack_without_a_daily_schedule_is_a_warning() -> None:
    policy = parse_policy('scan_time: "07:00"\n')
    for parameters in ({}, {"ScanSchedule": "rate(1 day)"}):
        check = preflight._scan_time_check(policy, parameters)
        assert check.status == "WARN" and "not a daily cron(M H * * ? *)" in check.detail, parameters


def test_the_alert_subscription_must_be_confirmed(
    deployed: Deployed, capsys: pytest.CaptureFixture[str]
) -> None:
    deployed.upload_policy(GOOD_POLICY)

    assert main(["preflight"]) == 1
    (line,) = [line for line in _lines(capsys) if "alert subscription" in line]
    assert line.startswith("FAIL") and "no subscription" in line and "AlertEmail" in line

    deployed.subscribe()
    deployed.pending = True
    assert main(["preflight"]) == 1
    (line,) = [line for line in _lines(capsys) if "alert subscription" in line]
    assert line.startswith("FAIL") and "not confirmed" in line and "ops@yourcompany.example" in line
    assert "Confirm subscription" in line


def test_a_check_without_permission_fails_and_the_others_still_run(
    deployed: Deployed, capsys: pytest.CaptureFixture[str]
) -> None:
    deployed.ready()
    deployed.ses.denied = True

    assert main(["preflight"]) == 1
    lines = _lines(capsys)
    (denied,) = [line for line in lines if line.startswith("FAIL")]
    assert "SES account: cannot check: not allowed" in denied
    assert _status(lines, "alert subscription") == "OK"


def test_a_missing_stack_is_one_line_and_exit_1(
    deployed: Deployed, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["preflight", "--stack", "other", "--region", REGION]) == 1
    err = capsys.readouterr().err
    assert "no stack named other in eu-west-1" in err and err.count("\n") == 1


def test_bad_arguments_are_one_line_and_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["preflight", "--stack"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("dunning: error:") and err.count("\n") == 1
    assert main(["preflight", "--unknown"]) == 2
