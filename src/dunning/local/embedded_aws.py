"""The embedded AWS: the deployed stack's table and bucket recreated in moto, in-process.

Everything the template says is read from `infra/template.yaml` itself, so the local system (the CLI, the
tests) and the deployed one cannot drift apart: the table's properties, each function's environment
(`function_environment`), its role (`dunning.local.embedded_iam`), the state machine's definition and the
daily scan's schedule (`scan_time`).
"""

from __future__ import annotations

import functools
import logging
import os
import re
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, time
from email.utils import parseaddr
from pathlib import Path, PurePosixPath
from typing import Any

import boto3
import yaml

from dunning.local import moto_internals
from dunning.local.embedded_dynamodb import partitioned_queries, wire_ready_attribute_values
from dunning.local.embedded_ses import NOTICE_CONFIGURATION_SET, create_ses_resources, embedded_ses
from dunning.local.embedded_sqs import retention_read_directly
from dunning.local.lambda_context import ACCOUNT as _ACCOUNT
from dunning.local.lambda_context import REGION as REGION
from dunning.local.lambda_context import Invocation as Invocation
from dunning.local.lambda_context import LocalContext as LocalContext
from dunning.local.lambda_context import current_invocation as current_invocation
from dunning.local.lambda_context import invoke_handler as invoke_handler
from dunning.runtime.settings import FUNCTION_SETTINGS, Settings, daily_time
from dunning.runtime.settings import UnsupportedSchedule as UnsupportedSchedule

LEDGER_TABLE = "dunning-ledger"
INGEST_BUCKET = "dunning-ingest"
LEGAL_BUCKET = "dunning-legal"
LEGAL_TEAM_EMAIL = "legal@example.com"


class ProjectNotFound(RuntimeError):
    pass


def project_root() -> Path:
    """The checkout this package runs from (it is installed in editable mode by the Makefile)."""
    for parent in Path(__file__).resolve().parents:
        if (parent / "infra" / "template.yaml").is_file():
            return parent
    raise ProjectNotFound("cannot find infra/template.yaml above the dunning package; run from a checkout")


class _CloudFormationLoader(yaml.SafeLoader):
    """Reads CloudFormation YAML: a short-form tag such as !Ref becomes its long form {"Ref": ...}."""


def _intrinsic(loader: yaml.SafeLoader, tag_suffix: str, node: yaml.Node) -> dict[str, Any]:
    name = "Ref" if tag_suffix == "Ref" else f"Fn::{tag_suffix}"
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
        if tag_suffix == "GetAtt":
            value = str(value).split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    return {name: value}


_CloudFormationLoader.add_multi_constructor("!", _intrinsic)


def load_template(path: Path | None = None) -> dict[str, Any]:
    template_path = path or project_root() / "infra" / "template.yaml"
    with template_path.open(encoding="utf-8") as handle:
        loaded: dict[str, Any] = yaml.load(handle, Loader=_CloudFormationLoader)  # noqa: S506 - SafeLoader subclass
    return loaded


def table_definition(template: dict[str, Any], logical_id: str, table_name: str) -> dict[str, Any]:
    """CreateTable arguments from an AWS::DynamoDB::Table resource (keys, indexes, billing mode)."""
    properties = template["Resources"][logical_id]["Properties"]
    kept = (
        "AttributeDefinitions",
        "KeySchema",
        "GlobalSecondaryIndexes",
        "LocalSecondaryIndexes",
        "BillingMode",
    )
    return {"TableName": table_name, **{key: properties[key] for key in kept if key in properties}}


STACK_NAME = "dunning"
STATE_MACHINE_NAME = f"{STACK_NAME}-collections"
STATE_MACHINE_ARN = f"arn:aws:states:{REGION}:{_ACCOUNT}:stateMachine:{STATE_MACHINE_NAME}"
POLICY_KEY = "config/policy.yaml"
# The template's logical ids of the embedded stack's resources, and their names here (what CloudFormation
# would generate is not known before a deployment; these are the embedded stack's own choice).
PHYSICAL_NAMES = {
    "LedgerTable": LEDGER_TABLE,
    "NoticeConfigurationSet": NOTICE_CONFIGURATION_SET,
    "IngestBucket": INGEST_BUCKET,
    "LegalBucket": LEGAL_BUCKET,
    "CollectionsStateMachine": STATE_MACHINE_NAME,
    "IngestFunction": "dunning-ingest",
    "ScanOverdueFunction": "dunning-scan",
    "EscalateFunction": "dunning-escalate",
    "SendNoticeFunction": "dunning-send-notice",
    "SesEventsFunction": "dunning-ses-events",
    "DigestFunction": "dunning-digest",
    "ScanPageQueue": "dunning-scan-pages",
}
FUNCTION_LOGICAL_IDS = {
    name: logical_id for logical_id, name in PHYSICAL_NAMES.items() if "Function" in logical_id
}
# What the local runs set on top of the template's environment (`function_environment`): only what has no
# deployed counterpart. Every other variable is the template's, resolved to the embedded stack's names.
LOCAL_ENVIRONMENT = {
    # The simulator writes packets to OUT/packets/: the legal team's link points there.
    "LOCAL_PACKET_LINKS": "packets/",
    # No X-Ray daemon and no CloudWatch to flush metrics to.
    "POWERTOOLS_TRACE_DISABLED": "true",
    "POWERTOOLS_METRICS_DISABLED": "true",
    # The local runs print their own summary; the functions' logs (INFO, deployed) would only drown it.
    "POWERTOOLS_LOG_LEVEL": "ERROR",
}
# The parameters the embedded stack is deployed with (the others keep their defaults).
STACK_PARAMETERS = {"LegalTeamEmail": LEGAL_TEAM_EMAIL}
# What the open embedded stack was deployed with on top (`embedded_aws(parameters=...)`), as a business
# passes --parameter-overrides: read by every resolution of the template while the stack is open.
_DEPLOYED_WITH: dict[str, str] = {}


def template_resolver(template: Mapping[str, Any], sender: str) -> Any:
    """The template's intrinsics resolved for the embedded stack: its parameters' defaults (SenderIdentity:
    the sender's domain, as a business deploys it; STACK_PARAMETERS), its resources' embedded names."""
    from dunning.local.embedded_iam import StackIdentity, TemplateResolver

    parameters = {**STACK_PARAMETERS, "SenderIdentity": sender_domain(sender), **_DEPLOYED_WITH}
    return TemplateResolver(template, StackIdentity(STACK_NAME, REGION, _ACCOUNT), parameters, PHYSICAL_NAMES)


def function_logical_ids(template: Mapping[str, Any]) -> list[str]:
    """The template's functions (AWS::Serverless::Function), in template order."""
    resources = template.get("Resources", {})
    return [name for name, spec in resources.items() if spec.get("Type") == "AWS::Serverless::Function"]


def function_settings(template: Mapping[str, Any], logical_id: str) -> type[Settings]:
    """The settings model of a function of the template: its code's folder's (`FUNCTION_SETTINGS`)."""
    code = str(template["Resources"][logical_id]["Properties"]["CodeUri"])
    return FUNCTION_SETTINGS[PurePosixPath(code).name]


def function_environment(template: Mapping[str, Any], resolver: Any, logical_id: str) -> dict[str, str]:
    """A function's deployed environment: Globals' variables and its own (its own win), intrinsics resolved,
    a variable whose value is AWS::NoValue left out, as CloudFormation does."""
    shared = template.get("Globals", {}).get("Function", {}).get("Environment", {})
    own = template["Resources"][logical_id]["Properties"].get("Environment", {})
    variables = {**shared.get("Variables", {}), **own.get("Variables", {})}
    return {name: str(value) for name, value in resolver.resolve(variables).items()}


def stack_environment(template: Mapping[str, Any], sender: str) -> dict[str, str]:
    """Every function's deployed environment in one (they agree wherever they share a name), with the local
    settings: the process environment of a local run, which Powertools reads when a handler module loads
    and the harness's own runtime is built from."""
    resolver = template_resolver(template, sender)
    merged: dict[str, str] = {}
    for logical_id in function_logical_ids(template):
        for name, value in function_environment(template, resolver, logical_id).items():
            if merged.setdefault(name, value) != value:
                raise ValueError(
                    f"{name} differs between the template's functions: {merged[name]!r}, {value!r}"
                )
    return {**merged, **LOCAL_ENVIRONMENT}


# One source for the scan's time of day: the deployed schedule. EventBridge Scheduler runs the scan function
# at the template's ScanSchedule (a parameter; its default is the one the embedded stack is deployed with),
# the functions that time the ladder get it as SCAN_SCHEDULE (the policy's own `scan_time` is not used), and
# the simulator runs the daily scan at that time too; one parser reads it (`settings.daily_time`). The
# schedule's time zone is the BusinessTimezone parameter, which the template asks to keep equal to the
# policy's business_timezone: the simulator evaluates the schedule in the policy's zone, as a business that
# deploys its policy would.


def scan_time(template: Mapping[str, Any], resolver: Any | None = None) -> time:
    """The time of day of the daily scan: the ScheduleExpression of the template's schedule that targets the
    scan function (resolved: the ScanSchedule parameter's default), a daily `cron(M H * * ? *)`."""
    resolver = resolver or template_resolver(template, "")
    schedules = [
        spec["Properties"]
        for spec in template.get("Resources", {}).values()
        if spec.get("Type") == "AWS::Scheduler::Schedule"
        and spec["Properties"].get("Target", {}).get("Arn") == {"Ref": "ScanOverdueFunction.Alias"}
    ]
    if len(schedules) != 1:
        raise UnsupportedSchedule(
            f"expected one schedule of the scan function, the template has {len(schedules)}"
        )
    return daily_time(str(resolver.resolve(schedules[0]["ScheduleExpression"])))


_HOURLY_CRON = re.compile(r"cron\((\d{1,2}) \* (?:\* \* \?|\? \* \*) \*\)")


def digest_minute(template: Mapping[str, Any], resolver: Any | None = None) -> int:
    """The minute past each hour the template's schedule of the digest function runs it, an hourly
    `cron(M * * * ? *)` (services.digest.digest_time: the run that sends is the window's first)."""
    resolver = resolver or template_resolver(template, "")
    schedules = [
        spec["Properties"]
        for spec in template.get("Resources", {}).values()
        if spec.get("Type") == "AWS::Scheduler::Schedule"
        and spec["Properties"].get("Target", {}).get("Arn") == {"Ref": "DigestFunction.Alias"}
    ]
    if len(schedules) != 1:
        raise UnsupportedSchedule(
            f"expected one schedule of the digest function, the template has {len(schedules)}"
        )
    expression = str(resolver.resolve(schedules[0]["ScheduleExpression"]))
    match = _HOURLY_CRON.fullmatch(expression)
    if match is None or int(match.group(1)) > 59:
        raise UnsupportedSchedule(f"the digest's schedule {expression!r} is not hourly, cron(M * * * ? *)")
    return int(match.group(1))


def sender_domain(sender: str) -> str:
    return parseaddr(sender)[1].rsplit("@", 1)[-1].lower()


class FunctionContainers:
    """One runtime per function, as each deployed function has its own containers: its environment is the
    template's (Globals and its own variables, resolved to the embedded stack's names) and its boto3
    session calls AWS with only its role's permissions (`dunning.local.embedded_iam`)."""

    def __init__(self, template: Mapping[str, Any], sender: str, clock: Any) -> None:
        from dunning.local.embedded_iam import IamEnforcer

        self.template = template
        self.sender = sender
        self.enforcer = IamEnforcer(self._stack_iam(sender), clock)
        self.local_environment = dict(LOCAL_ENVIRONMENT)
        self._runtimes: dict[str, Any] = {}
        self._harness: dict[type[Settings], Any] = {}

    def _stack_iam(self, sender: str) -> Any:
        from dunning.local.embedded_iam import StackIam

        return StackIam(template_resolver(self.template, sender))

    def use_sender(self, sender: str) -> None:
        """The business deploys with SenderIdentity set to its sender's domain."""
        self.sender = sender
        self.enforcer.iam = self._stack_iam(sender)
        self.forget()

    def deployed_environment(self, function: str) -> dict[str, str]:
        """The function's environment as the template gives it (`function_environment`)."""
        resolver = self.enforcer.iam.resolver
        return function_environment(self.template, resolver, FUNCTION_LOGICAL_IDS[function])

    def environment(self, function: str) -> dict[str, str]:
        """What the function runs with here: the deployed environment and the local settings."""
        return {**self.deployed_environment(function), **self.local_environment}

    def runtime(self, model: type[Settings]) -> Any:
        """The calling function's runtime, its settings read as `model` (the handler's). Outside a function,
        the harness's own: every permission, the process environment (`stack_environment`)."""
        from dunning.runtime.wiring import Runtime

        invocation = current_invocation()
        if invocation is None:
            if model not in self._harness:
                harness = boto3.session.Session()
                harness.events.register_last("before-parameter-build.sfn.StartExecution", _route_alias)
                self._harness[model] = Runtime(model.from_env(os.environ), harness)
            return self._harness[model]
        function = invocation.function
        logical_id = FUNCTION_LOGICAL_IDS[function]
        expected = function_settings(self.template, logical_id)
        if model is not expected:
            raise RuntimeError(f"{function} reads {model.__name__}; its settings are {expected.__name__}")
        if function not in self._runtimes:
            session = boto3.session.Session(region_name=REGION)
            role = self.enforcer.iam.role_of(logical_id)
            self.enforcer.install(session, role, function, _current_account)
            session.events.register_last("before-parameter-build.sfn.StartExecution", _route_alias)
            self._runtimes[function] = Runtime(model.from_env(self.environment(function)), session)
        return self._runtimes[function]

    def forget(self) -> None:
        """Every function starts cold again (e.g. after the policy or the templates changed)."""
        self._runtimes.clear()
        self._harness.clear()


def _route_alias(params: dict[str, Any], **_: Any) -> None:
    """Step Functions runs an execution started on an alias on the version the alias routes to. The
    embedded stack has one version of the state machine, so an alias routes to the state machine itself."""
    arn = str(params.get("stateMachineArn", ""))
    parts = arn.split(":")
    if len(parts) == 8 and not parts[-1].isdigit():
        params["stateMachineArn"] = ":".join(parts[:-1])


def _current_account() -> str:
    invocation = current_invocation()
    return invocation.account_id if invocation else ""


def _handlers() -> dict[str, Any]:
    from functions.escalate import app as escalate
    from functions.scan_overdue import app as scan
    from functions.send_notice import app as send_notice

    return {
        "dunning-escalate": escalate.handler,
        "dunning-send-notice": send_notice.handler,
        "dunning-scan": scan.handler,
    }


@dataclass(frozen=True)
class FailedUpload:
    """An upload the ingest function failed on: deployed, it would end in the dead-letter queue."""

    key: str
    error: str


@dataclass
class EmbeddedAws:
    """Handles on the embedded stack's resources (valid inside `embedded_aws()`)."""

    s3: Any
    dynamodb: Any
    sfn: Any = None
    sesv2: Any = None
    scheduler: Any = None
    bucket: str = INGEST_BUCKET
    table_name: str = LEDGER_TABLE
    state_machine_arn: str = STATE_MACHINE_ARN
    containers: Any = None
    failed_uploads: list[FailedUpload] = field(default_factory=list)
    ses: Any = None  # the embedded SES's settings (`embedded_ses.EmbeddedSes`)
    lambda_concurrency: Any = None  # `embedded_sfn.LambdaConcurrency`, when the account's limit is modelled

    @property
    def throttles(self) -> dict[str, int]:
        """How many calls were throttled, by kind: a task's Lambda invocation over the account's concurrency
        (`lambda`), an SES send over the maximum send rate (`ses`). Both 0 when no limit is set."""
        return {
            "lambda": self.lambda_concurrency.throttled if self.lambda_concurrency else 0,
            "ses": self.ses.throttled if self.ses else 0,
        }

    @property
    def denied_calls(self) -> list[Any]:
        """Every call a function made that its deployed role could not have made (AccessDenied)."""
        return list(self.containers.enforcer.denied) if self.containers else []

    def environment(self) -> dict[str, str]:
        """The process environment of a local run (`stack_environment`). Each function's own settings come
        from the template too (`FunctionContainers`)."""
        return stack_environment(self.containers.template, self.containers.sender)

    @property
    def scan_time(self) -> time:
        """When the deployed schedule runs the daily scan (`scan_time`), in the business time zone."""
        return scan_time(self.containers.template, self.containers.enforcer.iam.resolver)

    @property
    def clock(self) -> Any:
        return self.scheduler.clock

    def now(self) -> datetime:
        now: datetime = self.scheduler.clock.now()
        return now

    def use_policy(self, text: bytes) -> None:
        """Install a policy file the way a business does: upload it to the stack's PolicyKey, where the ingest
        function validates it and puts it in force (the active policy every function reads)."""
        from dunning.domain.policy import parse_policy
        from functions.ingest import app  # the deployed handler, dispatched in-process

        policy = parse_policy(text.decode("utf-8"))
        self.s3.put_object(Bucket=self.bucket, Key=POLICY_KEY, Body=text)
        invoke_handler(app.handler, self.upload_event(POLICY_KEY, self.now()), "dunning-ingest")
        _verify_sender(self.sesv2, policy.sender)
        self.containers.use_sender(policy.sender)

    def upload(self, kind: str, name: str, body: bytes, at: datetime | None = None) -> dict[str, Any]:
        """Put a file under incoming/<kind>/ as an accountant would, then run the real ingest handler on
        the event S3 sends for it. Returns the handler's result."""
        from functions.ingest import app  # the deployed handler, dispatched in-process

        key = f"incoming/{kind}/{name}"
        self.s3.put_object(Bucket=self.bucket, Key=key, Body=body)
        event = self.upload_event(key, at or self.now())
        try:
            result: dict[str, Any] = invoke_handler(app.handler, event, "dunning-ingest")
        except Exception as exc:  # deployed: retried by EventBridge, then kept in the dead-letter queue
            self.failed_uploads.append(FailedUpload(key, f"{type(exc).__name__}: {exc}"))
            return {"imports": [], "error": f"{type(exc).__name__}: {exc}"}
        return result

    def scan(self) -> dict[str, Any]:
        """What the daily schedule does: invoke the scan function, which queues a page per shard; then what
        the queue's event source does: invoke it with up to `scan_batch_size` pages at a time (the template's
        BatchSize), deleting the pages it did not report as failed, until the queue is empty (executions run
        until they wait). A reported failure is loud here (deployed, the queue gives the page again, then
        dead-letters it and the ScanFailed alarm fires). The day's pages and starts, summed."""
        from functions.scan_overdue import app

        event = {"id": f"scan-{self.now().isoformat()}", "source": "dunning.schedule"}
        summary: dict[str, Any] = invoke_handler(app.handler, event, "dunning-scan")
        summary |= {"items_read": 0, "started": [], "already_started": 0, "pages_scanned": 0}
        sqs = boto3.client("sqs", region_name=REGION)
        url = sqs.get_queue_url(QueueName=PHYSICAL_NAMES["ScanPageQueue"])["QueueUrl"]
        batch = self.scan_batch_size
        while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=batch).get("Messages", []):
            records = [
                {"messageId": m["MessageId"], "body": m["Body"], "eventSource": "aws:sqs"} for m in messages
            ]
            result = invoke_handler(app.handler, {"Records": records}, "dunning-scan")
            failed = {failure["itemIdentifier"] for failure in result.get("batchItemFailures", [])}
            done = [m for m in messages if m["MessageId"] not in failed]
            if done:
                entries = [{"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(done)]
                sqs.delete_message_batch(QueueUrl=url, Entries=entries)
            if failed:
                raise RuntimeError(f"{len(failed)} scan page(s) failed; see the scan function's log")
            for page in result["pages"]:
                summary["pages_scanned"] += 1
                summary["items_read"] += page["items_read"]
                summary["started"] += page["started"]
                summary["already_started"] += page["already_started"]
        return summary

    @functools.cached_property
    def scan_batch_size(self) -> int:
        """How many pages the scan queue hands the scan function at once (the template's BatchSize)."""
        events = self.containers.template["Resources"]["ScanOverdueFunction"]["Properties"]["Events"]
        return int(events["ScanPages"]["Properties"]["BatchSize"])

    @functools.cached_property
    def digest_minute(self) -> int:
        """The minute past each hour the deployed schedule runs the digest function (`digest_minute`)."""
        return digest_minute(self.containers.template, self.containers.enforcer.iam.resolver)

    def policy_in_force(self) -> Any:
        """The policy the functions read from the bucket now (the defaults before one is uploaded)."""
        from dunning.adapters.policy_store import ACTIVE_POLICY_KEY
        from dunning.domain.policy import DEFAULT_POLICY, parse_policy

        try:
            body = self.s3.get_object(Bucket=self.bucket, Key=ACTIVE_POLICY_KEY)["Body"].read()
        except self.s3.exceptions.NoSuchKey:
            return DEFAULT_POLICY
        return parse_policy(body.decode("utf-8"), ACTIVE_POLICY_KEY)

    def digest(self) -> dict[str, Any]:
        """What the hourly digest schedule does at the simulated instant: invoke the digest function."""
        from functions.digest import app

        now = self.now()
        event = {"id": f"digest-{now.isoformat()}", "scheduled_time": now.isoformat().replace("+00:00", "Z")}
        result: dict[str, Any] = invoke_handler(app.handler, event, "dunning-digest")
        return result

    def run_until(self, at: datetime) -> None:
        self.scheduler.run_until(at)

    def executions(self) -> list[dict[str, Any]]:
        pages = self.sfn.get_paginator("list_executions").paginate(stateMachineArn=self.state_machine_arn)
        return [execution for page in pages for execution in page["executions"]]

    def upload_event(self, key: str, at: datetime) -> dict[str, Any]:
        """The EventBridge 'Object Created' event S3 sends for `key` in the deployed stack."""
        head = self.s3.head_object(Bucket=self.bucket, Key=key)
        return {
            "version": "0",
            "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{key}#{head['ETag']}#{at.isoformat()}")),
            "detail-type": "Object Created",
            "source": "aws.s3",
            "account": _ACCOUNT,
            "time": at.isoformat().replace("+00:00", "Z"),
            "region": REGION,
            "resources": [f"arn:aws:s3:::{self.bucket}"],
            "detail": {
                "version": "0",
                "bucket": {"name": self.bucket},
                "object": {
                    "key": key,
                    "size": head["ContentLength"],
                    "etag": head["ETag"].strip('"'),
                    "version-id": head.get("VersionId"),
                    "sequencer": "0",
                },
                "request-id": "local",
                "requester": _ACCOUNT,
                "source-ip-address": "127.0.0.1",
                "reason": "PutObject",
            },
        }


def _verify_sender(sesv2: Any, sender: str) -> None:
    """SES only sends from verified identities: the sender's domain stands verified in the embedded AWS."""
    address = parseaddr(sender)[1]
    sesv2.create_email_identity(EmailIdentity=address.rsplit("@", 1)[-1])


def create_stack(
    scheduler: Any, template: dict[str, Any] | None = None, ses_verified: tuple[str, ...] = ()
) -> EmbeddedAws:
    """Create the stack's table, bucket, state machine and SES identity in moto (inside mock_aws)."""
    from dunning.domain.policy import DEFAULT_POLICY
    from dunning.local.embedded_sfn import load_definition
    from dunning.runtime.wiring import use_runtime_provider

    template = template or load_template()
    containers = FunctionContainers(template, DEFAULT_POLICY.sender, scheduler.clock)
    use_runtime_provider(containers.runtime)

    boto = boto3.session.Session(region_name=REGION)
    s3 = boto.client("s3")
    dynamodb = boto.resource("dynamodb")
    s3.create_bucket(Bucket=INGEST_BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
    s3.put_bucket_versioning(Bucket=INGEST_BUCKET, VersioningConfiguration={"Status": "Enabled"})
    s3.create_bucket(
        Bucket=LEGAL_BUCKET,
        CreateBucketConfiguration={"LocationConstraint": REGION},
        ObjectLockEnabledForBucket=True,
    )
    dynamodb.meta.client.create_table(**table_definition(template, "LedgerTable", LEDGER_TABLE))
    boto.client("sqs").create_queue(QueueName=PHYSICAL_NAMES["ScanPageQueue"])
    sfn = boto.client("stepfunctions")
    machine = template["Resources"]["CollectionsStateMachine"]["Properties"]
    substitutions = containers.enforcer.iam.resolver.resolve(machine.get("DefinitionSubstitutions", {}))
    definition = load_definition(project_root() / "infra" / machine["DefinitionUri"], substitutions)
    sfn.create_state_machine(
        name=STATE_MACHINE_NAME,
        definition=definition,
        roleArn=f"arn:aws:iam::{_ACCOUNT}:role/dunning-collections",
    )
    sesv2 = boto.client("sesv2")
    _verify_sender(sesv2, DEFAULT_POLICY.sender)
    create_ses_resources(sesv2, ses_verified)  # the notices' configuration set; sandbox: verified recipients
    containers.enforcer.on_denied.append(_log_denial(dynamodb))
    return EmbeddedAws(
        s3=s3, dynamodb=dynamodb, sfn=sfn, sesv2=sesv2, scheduler=scheduler, containers=containers
    )


def _log_denial(dynamodb: Any) -> Any:
    """A refused call goes into the contact log (`access_denied`), so the run's events show it."""
    from dunning.adapters.ledger import Ledger
    from dunning.domain.events import Event, EventType
    from dunning.local.embedded_iam import DeniedCall

    ledger = Ledger(dynamodb, LEDGER_TABLE)

    def log(call: DeniedCall) -> None:
        data = {"function": call.function, "action": call.action, "resource": call.resource}
        ledger.append_events([Event(call.at, EventType.ACCESS_DENIED, call.account_id, data)])

    return log


class ParsedPrograms:
    """State machine programs as moto parses them, one per definition, shared by every execution of it.

    moto parses an execution's definition (ASL, with ANTLR) at every StartExecution: most of a short
    execution's CPU here. A definition never changes (UpdateStateMachine makes another one), and the program
    parsed from it only declares: each execution's own state (its input, context object, variables, a
    Retrier's attempt count and back-off) lives in that execution's Environment, its stack and heap, and no
    node of the program changes while it runs (moto itself runs one Map iteration program for every item).
    So each definition is parsed once in the process and its program serves every execution of it, each with
    its own fresh Environment. One thing a node draws on first use: its key in an execution's heap
    (`heap_key`, a random id). It is drawn here for every node, before executions share the program, so that
    two executions reaching a node first at the same moment cannot give it two keys.

    The most recently used `maxsize` programs are kept (one is tens of KB; a run deploys one definition)."""

    def __init__(self, maxsize: int = 256) -> None:
        self.maxsize = maxsize
        self.parses = 0  # how many definitions were parsed (each once while it stays cached)
        self._programs: OrderedDict[str, Any] = OrderedDict()
        self._lock = threading.Lock()

    def program(self, definition: str, parse: Callable[[], Any]) -> Any:
        """The program of `definition`: `parse()`'s, on the first call for it; the same object afterwards."""
        with self._lock:  # executions start in their own threads; a definition is parsed by one of them
            program = self._programs.get(definition)
            if program is None:
                program = parse()
                _draw_heap_keys(program)
                self.parses += 1
                self._programs[definition] = program
                if len(self._programs) > self.maxsize:
                    self._programs.popitem(last=False)
            self._programs.move_to_end(definition)
            return program

    def cached(self, definition: str) -> Any | None:
        """The program of `definition` if it was parsed and is still kept, else None."""
        with self._lock:
            return self._programs.get(definition)


def program_nodes(program: Any) -> list[Any]:
    """Every node of a parsed program (moto's EvalComponent), each once: what its attributes, and theirs,
    and the lists, tuples, sets and dicts among them hold."""
    node_class: Any = moto_internals.EVAL_COMPONENT.get()
    nodes: list[Any] = []
    seen: set[int] = set()
    pending: list[Any] = [program]
    while pending:
        value = pending.pop()
        if id(value) in seen or isinstance(value, (str, bytes, int, float, type(None))):
            continue
        seen.add(id(value))
        if isinstance(value, dict):
            pending.extend(value.values())
        elif isinstance(value, (list, tuple, set, frozenset)):
            pending.extend(value)
        elif not isinstance(value, type) and hasattr(value, "__dict__"):
            if isinstance(value, node_class):
                nodes.append(value)
            pending.extend(vars(value).values())
    return nodes


def _draw_heap_keys(program: Any) -> None:
    """Each node's heap key (EvalComponent.heap_key, drawn on its first read), drawn now."""
    moto_internals.EVAL_COMPONENT_HEAP_KEY.get()  # fails here, naming it, if moto no longer has it
    for node in program_nodes(program):
        _ = node.heap_key


# The process's programs: `dunning simulate`, the tests and the bench deploy the same few definitions again
# and again, each time in a new embedded AWS.
PARSED_PROGRAMS = ParsedPrograms()


@contextmanager
def parsed_once_per_definition(programs: ParsedPrograms | None = None) -> Iterator[ParsedPrograms]:
    """Every execution started meanwhile runs the program of its definition from `programs` (default: the
    process's, PARSED_PROGRAMS): moto's own entrypoint parses a definition for its first execution only."""
    cache = PARSED_PROGRAMS if programs is None else programs
    parsed_by_moto: Any = moto_internals.EVALUATION_ENTRYPOINT.get()

    def entrypoint(worker: Any) -> Any:
        definition = worker._evaluation_details.state_machine_details.definition
        return cache.program(definition, lambda: parsed_by_moto(worker))

    with moto_internals.patched((moto_internals.EVALUATION_ENTRYPOINT, entrypoint)):
        yield cache


DEFAULT_START = datetime(2027, 1, 1, tzinfo=UTC)


@contextmanager
def embedded_aws(
    start: datetime = DEFAULT_START,
    template: dict[str, Any] | None = None,
    *,
    ses_sandbox: bool = False,
    ses_verified: tuple[str, ...] = (),
    lambda_concurrency: int | None = None,
    lambda_durations: Mapping[str, float] | None = None,
    ses_max_send_rate: float | None = None,
    retry_backoff: bool | None = None,
    parameters: Mapping[str, str] | None = None,
) -> Iterator[EmbeddedAws]:
    """moto in-process with the whole stack created, on a simulated clock starting at `start`; no network
    is touched. Functions run in-process, each with its own runtime and only its role's permissions from
    `template` (default: infra/template.yaml); Step Functions executions wait on the simulated clock.
    SES refuses what SES refuses (`dunning.local.embedded_ses`); `ses_sandbox` also refuses every recipient
    not in `ses_verified` (addresses or domains).

    Under load, as deployed (each off by default; `EmbeddedAws.throttles` counts what they refused):
    `lambda_concurrency` slots for the state machine's task invocations, each held for its function's
    simulated duration (`lambda_durations` by function name, else 1 s), an invocation finding none free
    throttled (Lambda.TooManyRequestsException); `ses_max_send_rate` recipients a second, a send over it
    refused (TooManyRequestsException, "Maximum sending rate exceeded."); `retry_backoff`: a Retry waits its
    back-off on the simulated clock instead of retrying at the same instant. Left unset, it is on exactly
    when a limit is: without it a throttled call would be retried at the instant it was refused, so every
    attempt would be refused. It is not on always, though that is what AWS does: everything after a retry
    then happens seconds later, and the ladder carries that on (a notice's gap is measured from the last
    send), so runs with faults but no limits would no longer give the times they give today.

    `parameters`: template parameters deployed with other values than their defaults, as `sam deploy
    --parameter-overrides` would (e.g. {"SendSpreadMinutes": "0"})."""
    from moto import mock_aws  # a local-only dependency, imported only when the embedded AWS is used

    from dunning.domain.clock import use_clock
    from dunning.domain.policy import DEFAULT_POLICY
    from dunning.local.embedded_sfn import (
        LambdaConcurrency,
        Scheduler,
        SimulatedClock,
        simulated_step_functions,
    )

    template = template or load_template()
    unknown = set(parameters or {}) - set(template.get("Parameters", {}))
    if unknown:
        raise ValueError(f"the template has no parameter {', '.join(sorted(unknown))}")
    _DEPLOYED_WITH.clear()
    _DEPLOYED_WITH.update(parameters or {})
    credentials = {
        "AWS_ACCESS_KEY_ID": "local",
        "AWS_SECRET_ACCESS_KEY": "local",
        "AWS_DEFAULT_REGION": REGION,
    }
    environment = stack_environment(template, DEFAULT_POLICY.sender)
    saved = {name: os.environ.get(name) for name in {*credentials, *environment}}
    os.environ.update(credentials)
    os.environ.update(environment)
    # Imported after the environment is set: Powertools reads its settings when the handler module loads.
    from dunning.runtime.wiring import use_runtime_provider

    # moto logs every Fail state of the ASL as an ERROR; our own failure path already records them.
    logging.getLogger("moto.stepfunctions").setLevel(logging.CRITICAL)
    scheduler = Scheduler(SimulatedClock(start))
    use_clock(scheduler.clock)
    # The limits under load: None is no limit; `retry_backoff` None follows the limits.
    concurrency = None
    if lambda_concurrency is not None:
        concurrency = LambdaConcurrency(lambda_concurrency, dict(lambda_durations or {}))
    if retry_backoff is None:
        retry_backoff = lambda_concurrency is not None or ses_max_send_rate is not None
    sfn_limits: dict[str, Any] = {"concurrency": concurrency, "retry_backoff": retry_backoff}
    ses_limits: dict[str, Any] = {"max_send_rate": ses_max_send_rate, "clock": scheduler.clock.now}
    config: Any = {"stepfunctions": {"execute_state_machine": True}, "lambda": {"use_docker": False}}
    try:
        with (
            mock_aws(config=config),
            partitioned_queries(),  # a Query reads its partition, not the whole table (embedded_dynamodb)
            wire_ready_attribute_values(),  # items go into answers as moto holds them (embedded_dynamodb)
            retention_read_directly(),  # a receive does not count the queue per message (embedded_sqs)
            parsed_once_per_definition(),  # a definition is parsed once, not at every StartExecution
            simulated_step_functions(scheduler, _handlers(), **sfn_limits),
            embedded_ses(REGION, _ACCOUNT, sandbox=ses_sandbox, **ses_limits) as ses,
        ):
            # moto's ids (S3 versions, SES message ids) come from one generator: seeded, runs repeat exactly.
            moto_internals.MOCK_RANDOM_SEED.get()(2027)
            stack = create_stack(scheduler, template, ses_verified)
            stack.ses, stack.lambda_concurrency = ses, concurrency
            yield stack
    finally:
        _DEPLOYED_WITH.clear()
        use_clock(None)
        use_runtime_provider(None)
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
