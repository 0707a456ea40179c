"""The embedded AWS: the deployed stack's table and bucket recreated in moto, in-process.

The table is created from `infra/template.yaml`'s own properties, so the local system (the CLI, the tests)
and the deployed one cannot drift apart.
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parseaddr
from pathlib import Path
from typing import Any

import boto3
import yaml

REGION = "eu-west-1"
LEDGER_TABLE = "dunning-ledger"
INGEST_BUCKET = "dunning-ingest"
LEGAL_BUCKET = "dunning-legal"
LEGAL_TEAM_EMAIL = "legal@example.com"
_ACCOUNT = "123456789012"


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


def invoke_handler(handler: Any, event: dict[str, Any], function_name: str) -> Any:
    """Call a Lambda handler in this process, as Lambda would."""
    from aws_lambda_powertools import Metrics

    try:
        return handler(event, LocalContext(function_name))
    finally:
        # Metrics are disabled locally, but Powertools still collects them (and prints them once 100 pile
        # up); every invocation here is a fresh "container", so start each with none.
        Metrics(namespace="Dunning").clear_metrics()


@dataclass
class LocalContext:
    """What Powertools reads from a Lambda context, for handlers invoked in-process."""

    function_name: str
    memory_limit_in_mb: int = 512
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:{REGION}:{_ACCOUNT}:function:{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return 300_000


STATE_MACHINE_NAME = "dunning-collections"
STATE_MACHINE_ARN = f"arn:aws:states:{REGION}:{_ACCOUNT}:stateMachine:{STATE_MACHINE_NAME}"
POLICY_KEY = "config/policy.yaml"
FUNCTIONS = {
    "EscalateFunctionArn": "dunning-escalate",
    "SendNoticeFunctionArn": "dunning-send-notice",
}


def _handlers() -> dict[str, Any]:
    from functions.escalate import app as escalate
    from functions.scan_overdue import app as scan
    from functions.send_notice import app as send_notice

    return {
        "dunning-escalate": escalate.handler,
        "dunning-send-notice": send_notice.handler,
        "dunning-scan": scan.handler,
    }


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

    def environment(self) -> dict[str, str]:
        """The environment the deployed functions get from the template, pointing at this stack."""
        return {
            "LEDGER_TABLE": self.table_name,
            "INGEST_BUCKET": self.bucket,
            "REJECTED_PREFIX": "rejected/",
            "STATE_MACHINE_ARN": self.state_machine_arn,
            "LEGAL_BUCKET": LEGAL_BUCKET,
            "LEGAL_TEAM_EMAIL": LEGAL_TEAM_EMAIL,
            # The simulator writes packets to OUT/packets/: the legal team's link points there.
            "LOCAL_PACKET_LINKS": "packets/",
            "POWERTOOLS_SERVICE_NAME": "dunning",
            "POWERTOOLS_METRICS_NAMESPACE": "Dunning",
            "POWERTOOLS_TRACE_DISABLED": "true",
            "POWERTOOLS_METRICS_DISABLED": "true",
            # The local runs print their own summary; the functions' logs would only drown it.
            "POWERTOOLS_LOG_LEVEL": "ERROR",
        }

    @property
    def clock(self) -> Any:
        return self.scheduler.clock

    def now(self) -> datetime:
        now: datetime = self.scheduler.clock.now()
        return now

    def use_policy(self, text: bytes) -> None:
        """Install a policy file the way a business does: into the bucket, under the stack's PolicyKey."""
        from dunning.policy import parse_policy
        from dunning.runtime import runtime

        policy = parse_policy(text.decode("utf-8"))
        self.s3.put_object(Bucket=self.bucket, Key=POLICY_KEY, Body=text)
        os.environ["POLICY_KEY"] = POLICY_KEY
        _verify_sender(self.sesv2, policy.sender)
        runtime.cache_clear()

    def upload(self, kind: str, name: str, body: bytes, at: datetime | None = None) -> dict[str, Any]:
        """Put a file under incoming/<kind>/ as an accountant would, then run the real ingest handler on
        the event S3 sends for it. Returns the handler's result."""
        from functions.ingest import app  # the deployed handler, dispatched in-process

        key = f"incoming/{kind}/{name}"
        self.s3.put_object(Bucket=self.bucket, Key=key, Body=body)
        event = self.upload_event(key, at or self.now())
        result: dict[str, Any] = invoke_handler(app.handler, event, "dunning-ingest")
        return result

    def scan(self) -> dict[str, Any]:
        """What the daily schedule does: invoke the scan function (executions run until they wait)."""
        from functions.scan_overdue import app

        event = {"id": f"scan-{self.now().isoformat()}", "source": "dunning.schedule"}
        result: dict[str, Any] = invoke_handler(app.handler, event, "dunning-scan")
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


def create_stack(scheduler: Any, template: dict[str, Any] | None = None) -> EmbeddedAws:
    """Create the stack's table, bucket, state machine and SES identity in moto (inside mock_aws)."""
    from dunning.embedded_sfn import function_arn, load_definition
    from dunning.policy import DEFAULT_POLICY

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
    dynamodb.meta.client.create_table(
        **table_definition(template or load_template(), "LedgerTable", LEDGER_TABLE)
    )
    sfn = boto.client("stepfunctions")
    definition = load_definition(
        project_root() / "infra" / "statemachine" / "collections.asl.json",
        {key: function_arn(name) for key, name in FUNCTIONS.items()},
    )
    sfn.create_state_machine(
        name=STATE_MACHINE_NAME,
        definition=definition,
        roleArn=f"arn:aws:iam::{_ACCOUNT}:role/dunning-collections",
    )
    sesv2 = boto.client("sesv2")
    _verify_sender(sesv2, DEFAULT_POLICY.sender)
    return EmbeddedAws(s3=s3, dynamodb=dynamodb, sfn=sfn, sesv2=sesv2, scheduler=scheduler)


DEFAULT_START = datetime(2027, 1, 1, tzinfo=UTC)


@contextmanager
def embedded_aws(start: datetime = DEFAULT_START) -> Iterator[EmbeddedAws]:
    """moto in-process with the whole stack created, on a simulated clock starting at `start`; no network
    is touched. Functions run in-process; Step Functions executions wait on the simulated clock."""
    from moto import mock_aws  # a local-only dependency, imported only when the embedded AWS is used

    from dunning.clock import use_clock
    from dunning.embedded_sfn import Scheduler, SimulatedClock, simulated_step_functions

    credentials = {
        "AWS_ACCESS_KEY_ID": "local",
        "AWS_SECRET_ACCESS_KEY": "local",
        "AWS_DEFAULT_REGION": REGION,
    }
    probe = EmbeddedAws(s3=None, dynamodb=None)
    saved = {name: os.environ.get(name) for name in {*credentials, *probe.environment()}}
    os.environ.update(credentials)
    os.environ.update(probe.environment())
    # Imported after the environment is set: Powertools reads its settings when the handler module loads.
    from dunning.runtime import runtime

    runtime.cache_clear()  # handlers cache their clients per container; this is a new "container"
    # moto logs every Fail state of the ASL as an ERROR; our own failure path already records them.
    logging.getLogger("moto.stepfunctions").setLevel(logging.CRITICAL)
    scheduler = Scheduler(SimulatedClock(start))
    use_clock(scheduler.clock)
    config: Any = {"stepfunctions": {"execute_state_machine": True}, "lambda": {"use_docker": False}}
    try:
        with mock_aws(config=config), simulated_step_functions(scheduler, _handlers()):
            # moto's ids (S3 versions, SES message ids) come from one generator: seeded, runs repeat exactly.
            from moto.moto_api._internal import mock_random

            mock_random.seed(2027)
            yield create_stack(scheduler)
    finally:
        use_clock(None)
        runtime.cache_clear()
        os.environ.pop("POLICY_KEY", None)
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
