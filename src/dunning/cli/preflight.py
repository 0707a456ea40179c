"""`dunning preflight`: is a deployed stack ready to send notices? Run it before go-live (and after changes).

One line per check: OK, WARN (works, but look at it) or FAIL, and for anything not OK what to do. The stack's
outputs say where everything is, its ScanSchedule parameter when the daily scan runs. Exit status 0 when
nothing failed, 1 otherwise.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from email.utils import parseaddr
from functools import partial
from typing import Any, Literal, TextIO

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from dunning.cli.stack import StackCommandError, open_stack
from dunning.domain.policy import Policy, PolicyError, parse_policy
from dunning.runtime.settings import UnsupportedSchedule, daily_time

Status = Literal["OK", "WARN", "FAIL"]
REQUIRED_OUTPUTS = ("IngestBucketName", "PolicyKey", "SenderIdentityName", "AlertTopicArn")
_DENIED = {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "AuthorizationError"}


class PreflightError(StackCommandError):
    """The checks cannot run at all (no stack, no credentials): one line, exit status 1."""


@dataclass(frozen=True)
class Check:
    status: Status
    name: str
    detail: str
    fix: str = ""

    def line(self) -> str:
        text = f"{self.status:<5} {self.name}: {self.detail}"
        return f"{text} -> {self.fix}" if self.fix and self.status != "OK" else text


def add_arguments(commands: Any, parser_class: type[argparse.ArgumentParser]) -> None:
    preflight = commands.add_parser(
        "preflight",
        help="check a deployed stack before go-live (SES, sender identity, policy, alert subscription)",
        description="Checks, with your AWS profile, that a deployed stack can send notices: SES production "
        "access and sending enabled, the sender identity verified (with DKIM), the policy in the bucket "
        "valid, and the alert topic's subscription confirmed. Exit status 0 when nothing failed, "
        "1 otherwise.",
    )
    preflight.add_argument("--stack", default="dunning", help="CloudFormation stack name (default: dunning)")
    preflight.add_argument("--profile", help="AWS profile (default: the usual AWS credential chain)")
    preflight.add_argument("--region", help="AWS region (default: the profile's)")


def run_preflight(args: argparse.Namespace, out: TextIO) -> int:
    try:
        session, outputs = _open_stack(args)
        print(f"dunning preflight: stack {args.stack} in {session.region_name}", file=out)
        checks = list(run_checks(session, outputs, args.stack))
    except BotoCoreError as exc:
        raise PreflightError(str(exc)) from exc
    for check in checks:
        print(check.line(), file=out)
    failed = sum(check.status == "FAIL" for check in checks)
    warned = sum(check.status == "WARN" for check in checks)
    if failed:
        print(f"{failed} check(s) failed: not ready to go live.", file=out)
        return 1
    print(f"Ready to go live{f' ({warned} warning(s))' if warned else ''}.", file=out)
    return 0


def _open_stack(args: argparse.Namespace) -> tuple[boto3.session.Session, dict[str, str]]:
    try:
        return open_stack(args.profile, args.region, args.stack, REQUIRED_OUTPUTS, PreflightError)
    except ClientError as exc:
        raise PreflightError(_client_error(exc)) from exc


def _client_error(exc: ClientError) -> str:
    error = exc.response["Error"]
    code = error.get("Code", "")
    if code in _DENIED:
        return f"not allowed: {error.get('Message', code)} (use a profile with read access to the stack)"
    return f"{code}: {error.get('Message', '')}"


def _client(session: boto3.session.Session, service: str) -> Any:
    """The one place the checks get their clients (tests put fakes here for what moto lacks)."""
    return session.client(service)


def run_checks(
    session: boto3.session.Session, outputs: dict[str, str], stack: str = "dunning"
) -> Iterator[Check]:
    """Every check in order; a check that cannot be made (a permission is missing) is a FAIL that says so."""
    sesv2 = _client(session, "sesv2")
    identity = outputs["SenderIdentityName"]
    yield from _guarded("SES account", lambda: _ses_account(sesv2))
    yield from _guarded(f"sender identity {identity}", lambda: _sender_identity(sesv2, identity))
    policy_checks, policy = _policy(_client(session, "s3"), outputs["IngestBucketName"], outputs["PolicyKey"])
    yield from policy_checks
    if policy is not None:
        yield _sender_matches_identity(policy, identity)
        if "scan_time" in policy.model_fields_set:
            cloudformation = _client(session, "cloudformation")
            yield from _guarded("policy scan_time", partial(_scan_time, policy, cloudformation, stack))
    yield from _guarded("alert subscription", lambda: _alert_subscription(_client(session, "sns"), outputs))


def _guarded(name: str, step: Callable[[], list[Check]]) -> Iterator[Check]:
    try:
        yield from step()
    except ClientError as exc:
        yield Check(
            "FAIL", name, f"cannot check: {_client_error(exc)}", "run preflight with a profile that may"
        )


def _ses_account(sesv2: Any) -> list[Check]:
    account = sesv2.get_account()
    production = _ok_or_fail(
        account.get("ProductionAccessEnabled"),
        "SES production access",
        "granted: notices can go to any address",
        "the account is in the SES sandbox: only verified addresses receive email, 200 a day",
        "request production access (SES console, Account dashboard, Request production access)",
    )
    sending = _ok_or_fail(
        account.get("SendingEnabled"),
        "SES sending",
        "enabled",
        f"paused for the account (enforcement status {account.get('EnforcementStatus', 'unknown')})",
        "read the SES account dashboard and AWS's message about the pause; resume sending once resolved",
    )
    return [production, sending]


def _ok_or_fail(ok: object, name: str, detail: str, problem: str, fix: str) -> Check:
    return Check("OK", name, detail) if ok else Check("FAIL", name, problem, fix)


def _sender_identity(sesv2: Any, identity: str) -> list[Check]:
    name = f"sender identity {identity}"
    try:
        found = sesv2.get_email_identity(EmailIdentity=identity)
    except ClientError as exc:
        if exc.response["Error"].get("Code") == "NotFoundException":
            return [
                Check(
                    "FAIL",
                    name,
                    "not in SES in this account and region",
                    "create and verify it in SES (a domain with Easy DKIM: add the three CNAME records)",
                )
            ]
        raise
    checks = [
        _ok_or_fail(
            found.get("VerifiedForSendingStatus"),
            name,
            "verified for sending",
            "not verified for sending",
            "publish the DNS records SES shows for the identity (or click the verification email) and wait",
        )
    ]
    dkim = found.get("DkimAttributes") or {}
    status = dkim.get("Status", "NOT_STARTED")
    if found.get("IdentityType") == "EMAIL_ADDRESS":
        checks.append(
            Check(
                "WARN",
                f"DKIM for {identity}",
                "an address identity is signed only if its domain has DKIM in SES",
                "verify the domain with Easy DKIM and use it as SenderIdentity",
            )
        )
    elif dkim.get("SigningEnabled") and status == "SUCCESS":
        checks.append(Check("OK", f"DKIM for {identity}", "signing, records found"))
    else:
        checks.append(
            Check(
                "FAIL",
                f"DKIM for {identity}",
                f"status {status}" + ("" if dkim.get("SigningEnabled", True) else ", signing disabled"),
                "publish the Easy DKIM CNAME records SES shows for the domain (DNS can take up to 72 h)",
            )
        )
    return checks


def _policy(s3: Any, bucket: str, key: str) -> tuple[list[Check], Policy | None]:
    name = f"policy s3://{bucket}/{key}"
    try:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except ClientError as exc:
        if exc.response["Error"].get("Code") in ("NoSuchKey", "404", "NotFound"):
            return [
                Check(
                    "WARN",
                    name,
                    "no policy uploaded: the built-in defaults are in force (sender billing@example.com)",
                    f"check yours with `dunning ingest --policy FILE`, then upload it to s3://{bucket}/{key}",
                )
            ], None
        return [
            Check("FAIL", name, f"cannot check: {_client_error(exc)}", "use a profile allowed to read it")
        ], None
    try:
        policy = parse_policy(body.decode("utf-8"), key)
    except UnicodeDecodeError:
        return [Check("FAIL", name, "not UTF-8 text", "save it as UTF-8 and upload it again")], None
    except PolicyError as exc:
        reason = " ".join(str(exc).split())
        return [
            Check(
                "FAIL",
                name,
                f"invalid: {reason}",
                f"fix it (`dunning ingest --policy FILE` shows why) and upload it again; "
                f"rejected/{key.rsplit('/', 1)[-1]}.errors.csv has the report",
            )
        ], None
    warnings = [
        Check("WARN", name, warning, "edit the policy and upload it again")
        for warning in policy.charges.warnings()
    ]
    return [Check("OK", name, "valid"), *warnings], policy


def _sender_matches_identity(policy: Policy, identity: str) -> Check:
    address = parseaddr(policy.sender)[1].lower()
    domain = address.rpartition("@")[2]
    wanted = identity.lower()
    if address and (address == wanted or domain == wanted or domain.endswith(f".{wanted}")):
        return Check("OK", "policy sender", f"{address} is covered by the sender identity {identity}")
    return Check(
        "FAIL",
        "policy sender",
        f"{address or policy.sender!r} is not the sender identity {identity} nor an address of its domain",
        "make the policy's `sender` an address of the SenderIdentity (or deploy with that SenderIdentity)",
    )


def _scan_time(policy: Policy, cloudformation: Any, stack: str) -> list[Check]:
    """The policy sets scan_time, not used: the stack's ScanSchedule times the scan and the ladder."""
    described = cloudformation.describe_stacks(StackName=stack)["Stacks"][0]
    parameters = {
        item["ParameterKey"]: item.get("ParameterValue", "") for item in described.get("Parameters", [])
    }
    return [_scan_time_check(policy, parameters)]


def _scan_time_check(policy: Policy, parameters: Mapping[str, str]) -> Check:
    name = "policy scan_time"
    given = f"{policy.scan_time:%H:%M}"
    schedule = parameters.get("ScanSchedule", "")
    try:
        deployed = daily_time(schedule)
    except UnsupportedSchedule:
        return Check(
            "WARN",
            name,
            f"{given} is not used, and the stack's ScanSchedule {schedule!r} is not a daily "
            "cron(M H * * ? *)",
            "deploy this version of the stack (`make deploy`) with a daily ScanSchedule",
        )
    zone = parameters.get("BusinessTimezone", "the business time zone")
    if deployed == policy.scan_time:
        return Check("OK", name, f"{given}, the stack's ScanSchedule {schedule} ({zone})")
    return Check(
        "WARN",
        name,
        f"{given} is not used: the scan and the ladder run at the stack's ScanSchedule {schedule} "
        f"({deployed:%H:%M} {zone})",
        "remove scan_time from the policy; to scan at another time, deploy with "
        "ScanSchedule=cron(M H * * ? *)",
    )


def _alert_subscription(sns: Any, outputs: dict[str, str]) -> list[Check]:
    topic = outputs["AlertTopicArn"]
    name = "alert subscription"
    confirmed, pending = [], []
    for page in sns.get_paginator("list_subscriptions_by_topic").paginate(TopicArn=topic):
        for subscription in page.get("Subscriptions", []):
            arn = subscription.get("SubscriptionArn", "")
            target = f"{subscription.get('Protocol', '?')}:{subscription.get('Endpoint', '?')}"
            if arn == "PendingConfirmation":
                pending.append(target)
            elif arn.startswith("arn:"):
                confirmed.append(target)
    if confirmed:
        return [Check("OK", name, f"{len(confirmed)} confirmed ({', '.join(sorted(confirmed))})")]
    if pending:
        return [
            Check(
                "FAIL",
                name,
                f"not confirmed yet: {', '.join(sorted(pending))}",
                "click 'Confirm subscription' in the email from AWS Notifications (it expires after 3 days; "
                "deploy again or subscribe again to get a new one)",
            )
        ]
    return [
        Check(
            "FAIL",
            name,
            "nobody gets the alarms: the topic has no subscription",
            f"deploy with AlertEmail=you@yourcompany.example, or subscribe to {topic}",
        )
    ]
