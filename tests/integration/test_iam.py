"""Every function runs with only the permissions infra/template.yaml gives its role.

The embedded IAM (dunning.local.embedded_iam) reads the template and refuses, as AWS would, every call a
function's role could not make. These tests show that it bites: a representative run of the whole system
needs every statement the functions have, removing any one of them denies a call the run made, and a
removed permission shows up to the user as a failure, not as a quiet success.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from datetime import date, time
from pathlib import Path
from typing import Any

import pytest

from dunning.domain.policy import DEFAULT_POLICY
from dunning.local.embedded_aws import FUNCTION_LOGICAL_IDS, FunctionContainers, invoke_handler, load_template
from dunning.local.embedded_iam import Check, Decision, StackIam, sole_allowers, unused_statements
from dunning.local.simulator import Upload
from dunning.services.executions import step_input
from tests.support.collections import PAYMENT_HEADER, World, world
from tests.support.files import csv_bytes, invoice_row

# Its module fixture runs a whole simulation: one worker runs every test here (make test: --dist loadgroup).
pytestmark = pytest.mark.xdist_group("test_iam")

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
FUNCTION_ROLES = sorted(f"{logical_id}Role" for logical_id in FUNCTION_LOGICAL_IDS.values())
POLICY = """
business_timezone: Europe/Bucharest
sender: "Accounts Receivable <billing@collections.example.com>"
# A collector: call tasks on the ladder, and the owner's daily digest (the digest function's every grant).
collector: collections@example.com
charges:
  statutory_interest: eu
  late_fees: [{stage: firm_notice, flat: "25.00"}]
  show_on: [firm_notice, demand_letter, final_notice]
"""
# Statements the functions hold for what AWS services do on their behalf, which no in-process run can
# exercise: Lambda writes a failed asynchronous invocation to the function's dead-letter queue with the
# function's role, and the queue is encrypted with the data key.
USED_BY_AWS_ON_THE_FUNCTIONS_BEHALF = {"SesEventsFunction/UseDataKey"}


def stack_iam(template: dict[str, Any] | None = None) -> StackIam:
    iam: StackIam = FunctionContainers(template or load_template(), DEFAULT_POLICY.sender, None).enforcer.iam
    return iam


def _bounce_the_first_notice(w: World) -> None:
    from dunning.ports import account_tag
    from functions.ses_events import app as ses_events
    from tests.integration.test_ses_events import bounce_event

    sent = next(e for e in w.ledger.events("ACME-RO") if e["type"] == "notice_sent")
    event = bounce_event(sent["to"][0], message_id=sent["message_id"], account_id=account_tag("ACME-RO"))
    invoke_handler(ses_events.handler, event, "dunning-ses-events")


def run_everything(w: World) -> None:
    """Every path the functions take: a first scan before any policy is uploaded, then the policy; uploads
    of each kind (with rejected rows); a custom template; the ladder to the legal hand-off with signed
    packet links; a bounce; a failing step picked up again by the scan; executions handing over to fresh
    ones; a payment on an account in legal hands."""
    document = (EXAMPLES / "documents/INV-1001.pdf").read_bytes()
    w.sim.schedule(w.day, Upload("documents", "INV-1001.pdf", document))
    for name in ("invoices.csv", "xero_export.csv"):
        w.sim.schedule(w.day, Upload("invoices", name, (EXAMPLES / name).read_bytes()))
    w.sim.schedule(w.day, Upload("payments", "payments.csv", (EXAMPLES / "payments.csv").read_bytes()))
    w.sim.schedule(w.day, Upload("actions", "actions.csv", (EXAMPLES / "actions.csv").read_bytes()))
    _a_hand_off_step_that_finds_a_notice_due(w)
    w.run_through(w.day)  # no policy in the bucket yet: the defaults apply
    w.aws.use_policy(POLICY.encode())
    w.aws.s3.put_object(
        Bucket=w.aws.bucket, Key="templates/en/reminder.subject.j2", Body=b"Reminder: {{ customer_name }}"
    )
    w.run_through(date(2026, 12, 10))
    _bounce_the_first_notice(w)
    w.run_through(date(2027, 2, 10))
    late = csv_bytes(PAYMENT_HEADER, [["NEVA-RU", "INV-3001", "100.00", "2027-02-11"]])
    w.sim.schedule(date(2027, 2, 11), Upload("payments", "late.csv", late))
    w.run_through(date(2027, 2, 12))


def _a_hand_off_step_that_finds_a_notice_due(w: World) -> None:
    """A step on escalate (as planned for a hand-off) that finds a notice due later today instead, as when an
    upload changed the ladder since: it passes the ladder on to a successor on send_notice. It runs just
    after the day's uploads, before any policy is uploaded (escalate reads the defaults)."""
    region, account = w.aws.state_machine_arn.split(":")[3:5]
    escalate = f"arn:aws:lambda:{region}:{account}:function:dunning-escalate:live"
    at = w.sim.at(w.day, time(0, 30))
    name = "NEVA-RU-EUR-handoff-step"
    payload = step_input("NEVA-RU", "EUR", at, escalate)
    w.aws.sfn.start_execution(stateMachineArn=w.aws.state_machine_arn, name=name, input=json.dumps(payload))


def _failing_for_a_while(original: Any, account: str, times: int) -> Any:
    failures: list[int] = []

    def decide(ledger: Any, policy: Any, clock: Any, request: Any, *args: Any, **kwargs: Any) -> Any:
        if request.account_id == account and len(failures) < times:
            failures.append(1)
            raise RuntimeError("ledger unavailable")
        return original(ledger, policy, clock, request, *args, **kwargs)

    return decide


@pytest.fixture(scope="module")
def recorded() -> Iterator[tuple[StackIam, list[Decision]]]:
    from dunning.services import escalation

    with pytest.MonkeyPatch.context() as patch, world(date(2026, 11, 20)) as w:
        patch.setattr(escalation, "decide_step", _failing_for_a_while(escalation.decide_step, "KYOTO-JP", 5))
        w.aws.containers.local_environment.pop("LOCAL_PACKET_LINKS")  # links signed as deployed
        enforcer = w.aws.containers.enforcer
        enforcer.record_decisions = True
        run_everything(w)
        assert w.aws.denied_calls == []
        assert [e for e in w.ledger.events("NEVA-RU") if e["type"] == "legal_notified"], (
            "the run reaches legal"
        )
        assert [e for e in w.ledger.events("KYOTO-JP") if e["type"] == "workflow_failed"], "a step failed"
        assert "NEVA-RU-EUR-handoff-step-c1" in {e["name"] for e in w.aws.executions()}, "escalate passed on"
        iam, decisions = enforcer.iam, list(enforcer.decisions)
    yield iam, decisions  # the embedded AWS is closed: other tests make their own


def test_the_whole_system_runs_with_no_call_denied(recorded: tuple[StackIam, list[Decision]]) -> None:
    _, decisions = recorded
    functions = {decision.principal for decision in decisions}
    assert functions == set(FUNCTION_ROLES), "every function took part in the run"
    assert all(decision.allowed_by for decision in decisions)


def test_every_statement_the_functions_hold_is_used(recorded: tuple[StackIam, list[Decision]]) -> None:
    iam, decisions = recorded
    unused = unused_statements(iam, decisions, FUNCTION_ROLES)
    leftover = {
        role: [s for s in sources if s not in USED_BY_AWS_ON_THE_FUNCTIONS_BEHALF]
        for role, sources in unused.items()
    }
    assert leftover == {role: [] for role in FUNCTION_ROLES}, (
        "a statement no call needs is broader than needed"
    )


def test_removing_any_needed_statement_denies_a_call_the_run_made(
    recorded: tuple[StackIam, list[Decision]],
) -> None:
    """For each statement of each function role: take it out of the template and evaluate the run's calls
    again; at least one is now refused."""
    template = load_template()
    _, decisions = recorded
    needed = {statement for statement, _ in sole_allowers(decisions)}
    for role in FUNCTION_ROLES:
        for statement in stack_iam(template).principals[role].statements:
            if statement.source in USED_BY_AWS_ON_THE_FUNCTIONS_BEHALF:
                continue
            assert statement.source in needed or _needed_jointly(statement.source, decisions), (
                statement.source
            )
            reduced = stack_iam(without_statement(template, statement.source))
            refused = [
                d
                for d in decisions
                if d.principal == role and not reduced.decide(reduced.principals[role], d.check)[0]
            ]
            assert refused, f"removing {statement.source} refused nothing"


def _needed_jointly(source: str, decisions: list[Decision]) -> bool:
    return any(source in decision.allowed_by for decision in decisions)


def without_statement(template: dict[str, Any], source: str) -> dict[str, Any]:
    """A copy of the template without the statement named 'Resource/Sid' (or 'Resource/Policy/Sid')."""
    logical_id, sid = source.split("/", 1)[0], source.rsplit("/", 1)[-1]
    changed = copy.deepcopy(template)
    properties = changed["Resources"][logical_id]["Properties"]
    documents = (
        [properties["PolicyDocument"]]
        if "PolicyDocument" in properties
        else [p for p in properties.get("Policies", []) if isinstance(p, dict) and "Statement" in p]
    )
    for document in documents:
        kept = [s for s in document["Statement"] if s.get("Sid") != sid]
        if len(kept) < len(document["Statement"]):
            document["Statement"] = kept
            return changed
    raise AssertionError(f"no statement {source} in the template")


def test_no_function_statement_uses_a_wildcard_action() -> None:
    iam = stack_iam()
    for role in FUNCTION_ROLES:
        for statement in iam.principals[role].statements:
            assert not any("*" in action for action in statement.actions), statement.source


def test_only_the_escalate_function_may_write_case_packets() -> None:
    """The legal bucket's policy denies every other writer, whatever its own IAM policy says."""
    iam = stack_iam()
    packet = "arn:aws:s3:::dunning-legal/cases/CASE-1.zip"
    assert iam.decide(iam.principals["EscalateFunctionRole"], Check("s3:PutObject", packet))[0]
    ingest = iam.principals["IngestFunctionRole"]
    ingest.statements += iam.principals["EscalateFunctionRole"].statements  # even given the same grants
    assert not iam.decide(ingest, Check("s3:PutObject", packet))[0]


def test_reading_an_object_by_version_is_a_separate_permission() -> None:
    iam = stack_iam()
    send = iam.principals["SendNoticeFunctionRole"]
    document = "arn:aws:s3:::dunning-ingest/incoming/documents/INV-1.pdf"
    assert iam.decide(send, Check("s3:GetObjectVersion", document))[0]
    assert not iam.decide(
        send, Check("s3:GetObjectVersion", "arn:aws:s3:::dunning-ingest/incoming/invoices/a.csv")
    )[0]


def test_a_removed_permission_fails_the_run_loudly() -> None:
    """End to end: the send function without its SES permission sends nothing, every refusal is a
    denied call and a notice_failed, and no case is opened on notices nobody received."""
    template = without_statement(load_template(), "SendNoticeFunction/SendAsTheSenderIdentityOnly")
    with world(date(2027, 1, 4), template=template) as w:
        w.invoices(invoice_row("A-1", account_id="ACME", due_on="2027-01-10"))
        w.run_through(date(2027, 3, 31))
        denied = w.aws.denied_calls
        assert denied and {(d.function, d.action) for d in denied} == {
            ("dunning-send-notice", "ses:SendRawEmail")
        }
        types = [e["type"] for e in w.events("ACME")]
        assert "notice_sent" not in types and "case_opened" not in types
        assert "notice_failed" in types
        logged = {(e["function"], e["action"]) for e in w.events("ACME") if e["type"] == "access_denied"}
        assert logged == {("dunning-send-notice", "ses:SendRawEmail")}


def test_calls_are_authorised_as_aws_authorises_them() -> None:
    from dunning.local.embedded_iam import CallMapper

    mapper = CallMapper(stack_iam())
    by_version = mapper.checks("s3", "GetObject", {"Bucket": "dunning-ingest", "Key": "k", "VersionId": "v1"})
    assert [(c.action, c.resource.rsplit(":", 1)[-1]) for c in by_version] == [
        ("s3:GetObjectVersion", "dunning-ingest/k"),
        ("kms:Decrypt", "key/dunning-DataKey"),
    ]
    write = mapper.checks("s3", "PutObject", {"Bucket": "dunning-legal", "Key": "cases/C.zip"})
    assert [c.action for c in write] == ["s3:PutObject", "kms:GenerateDataKey"]
    assert write[1].resource.endswith("key/dunning-LegalKey")
    raw = {
        "FromEmailAddress": "A <a@Example.com>",
        "Content": {"Raw": {"Data": b""}},
        "ConfigurationSetName": "cs",
    }
    assert [(c.action, c.resource.split(":")[-1]) for c in mapper.checks("sesv2", "SendEmail", raw)] == [
        ("ses:SendRawEmail", "identity/example.com"),
        ("ses:SendRawEmail", "configuration-set/cs"),
    ]
    query = mapper.checks("dynamodb", "Query", {"TableName": "dunning-ledger", "IndexName": "due"})
    assert query[0].resource.endswith("table/dunning-ledger/index/due")
