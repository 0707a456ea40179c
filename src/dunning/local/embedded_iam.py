"""The deployed stack's IAM, enforced on the embedded AWS.

Each function of `infra/template.yaml` runs in the simulator and the tests with only the permissions the
template gives its role: its inline statements, the SAM policy templates it uses and the AWS::IAM::Policy
resources attached to its role, evaluated together with the resource policies that real AWS also consults
(bucket policies, KMS key policies, role trust policies). The template is the only source: nothing here
names an action a function may use.

Every AWS call a function makes is mapped to the IAM actions and resources AWS authorises it as (S3 reads by
version need s3:GetObjectVersion; an SES raw send needs ses:SendRawEmail on the identity and on the
configuration set; writing to an SSE-KMS bucket needs kms:GenerateDataKey on its key, ...), and a call the
deployed role could not make fails as AWS fails it: a ClientError AccessDenied, before moto sees it.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from email import message_from_bytes
from email.utils import getaddresses
from functools import lru_cache
from typing import Any

from botocore.exceptions import ClientError

PARTITION = "aws"


class TemplateNotEvaluable(ValueError):
    """The template uses a construct this evaluator cannot read (so it cannot be enforced)."""


# --- the template, resolved to the embedded stack's names ----------------------------------------


@dataclass(frozen=True)
class StackIdentity:
    name: str
    region: str
    account: str

    @property
    def stack_id(self) -> str:
        return (
            f"arn:{PARTITION}:cloudformation:{self.region}:{self.account}:stack/{self.name}/"
            "00000000-0000-4000-8000-000000000000"
        )


_NO_VALUE = object()


class TemplateResolver:
    """Resolves CloudFormation intrinsic functions against the embedded stack's physical names."""

    def __init__(
        self,
        template: Mapping[str, Any],
        stack: StackIdentity,
        parameters: Mapping[str, str],
        physical_names: Mapping[str, str],
    ) -> None:
        self.template = template
        self.stack = stack
        self.resources: Mapping[str, Any] = template.get("Resources", {})
        declared = template.get("Parameters", {})
        self.parameters = {name: str(spec.get("Default", "")) for name, spec in declared.items()}
        self.parameters.update(parameters)
        self.physical_names = physical_names
        self._conditions: dict[str, bool] = {}

    # names --------------------------------------------------------------------------------------------------
    def physical_name(self, logical_id: str) -> str:
        return self.physical_names.get(logical_id, f"{self.stack.name}-{logical_id}")

    def _type(self, logical_id: str) -> str:
        resource = self.resources.get(logical_id)
        if resource is not None:
            return str(resource.get("Type", ""))
        # Resources SAM generates: <Function>Role for a function without a Role of its own.
        if (
            logical_id.endswith("Role")
            and self._type(logical_id[: -len("Role")]) == "AWS::Serverless::Function"
        ):
            return "AWS::IAM::Role"
        raise TemplateNotEvaluable(f"unknown resource {logical_id}")

    def ref(self, name: str) -> Any:
        pseudo = {
            "AWS::Region": self.stack.region,
            "AWS::AccountId": self.stack.account,
            "AWS::Partition": PARTITION,
            "AWS::StackName": self.stack.name,
            "AWS::StackId": self.stack.stack_id,
            "AWS::URLSuffix": "amazonaws.com",
        }
        if name == "AWS::NoValue":
            return _NO_VALUE
        if name in pseudo:
            return pseudo[name]
        if name in self.parameters:
            return self.parameters[name]
        if name.endswith(".Alias"):  # SAM: the alias ARN of a function with AutoPublishAlias
            function = name[: -len(".Alias")]
            alias = self.resources[function]["Properties"].get("AutoPublishAlias", "live")
            return f"{self.arn(function)}:{alias}"
        kind = self._type(name)
        if kind in ("AWS::Serverless::StateMachine", "AWS::StepFunctions::StateMachine", "AWS::SNS::Topic"):
            return self.arn(name)
        if kind == "AWS::SQS::Queue":
            return f"https://sqs.{self.stack.region}.amazonaws.com/{self.stack.account}/{self.physical_name(name)}"
        return self.physical_name(name)

    def arn(self, logical_id: str) -> str:
        kind, name = self._type(logical_id), self.physical_name(logical_id)
        region, account = self.stack.region, self.stack.account
        patterns = {
            "AWS::S3::Bucket": f"arn:{PARTITION}:s3:::{name}",
            "AWS::DynamoDB::Table": f"arn:{PARTITION}:dynamodb:{region}:{account}:table/{name}",
            "AWS::KMS::Key": f"arn:{PARTITION}:kms:{region}:{account}:key/{name}",
            "AWS::Serverless::Function": f"arn:{PARTITION}:lambda:{region}:{account}:function:{name}",
            "AWS::Lambda::Function": f"arn:{PARTITION}:lambda:{region}:{account}:function:{name}",
            "AWS::IAM::Role": f"arn:{PARTITION}:iam::{account}:role/{name}",
            "AWS::SQS::Queue": f"arn:{PARTITION}:sqs:{region}:{account}:{name}",
            "AWS::SNS::Topic": f"arn:{PARTITION}:sns:{region}:{account}:{name}",
            "AWS::Serverless::StateMachine": f"arn:{PARTITION}:states:{region}:{account}:stateMachine:{name}",
            "AWS::StepFunctions::StateMachine": (
                f"arn:{PARTITION}:states:{region}:{account}:stateMachine:{name}"
            ),
            "AWS::Logs::LogGroup": f"arn:{PARTITION}:logs:{region}:{account}:log-group:{name}:*",
        }
        if kind not in patterns:
            return f"arn:{PARTITION}:cloudformation:{region}:{account}:{logical_id}"
        return patterns[kind]

    def get_att(self, logical_id: str, attribute: str) -> str:
        if attribute == "Arn":
            return self.arn(logical_id)
        if attribute in ("Name", "QueueName", "TopicName"):
            return self.physical_name(logical_id)
        if attribute == "KeyId":
            return self.physical_name(logical_id)
        # Event rules SAM generates and anything else: a stable, unique stand-in.
        return f"arn:{PARTITION}:events:{self.stack.region}:{self.stack.account}:rule/{logical_id}"

    # conditions ---------------------------------------------------------------------------------------------
    def condition(self, name: str) -> bool:
        if name not in self._conditions:
            self._conditions[name] = bool(self.resolve(self.template["Conditions"][name]))
        return self._conditions[name]

    # values -------------------------------------------------------------------------------------------------
    def resolve(self, value: Any) -> Any:  # noqa: C901 - one branch per intrinsic function
        if isinstance(value, list):
            items = [self.resolve(item) for item in value]
            return [item for item in items if item is not _NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((key, argument),) = value.items()
            if key == "Ref":
                return self.ref(argument)
            if key == "Fn::GetAtt":
                logical_id, attribute = argument if isinstance(argument, list) else argument.split(".", 1)
                return self.get_att(logical_id, attribute)
            if key == "Fn::Sub":
                return self._sub(argument)
            if key == "Fn::If":
                name, when_true, when_false = argument
                return self.resolve(when_true if self.condition(name) else when_false)
            if key == "Fn::Equals":
                left, right = (self.resolve(item) for item in argument)
                return left == right
            if key == "Fn::Not":
                return not self.resolve(argument[0])
            if key == "Fn::And":
                return all(self.resolve(item) for item in argument)
            if key == "Fn::Or":
                return any(self.resolve(item) for item in argument)
            if key == "Condition":
                return self.condition(argument)
            if key == "Fn::Join":
                separator, items = argument
                return separator.join(str(item) for item in self.resolve(items))
            if key == "Fn::Split":
                separator, text = argument
                return str(self.resolve(text)).split(separator)
            if key == "Fn::Select":
                index, items = argument
                return self.resolve(items)[int(self.resolve(index))]
            if key.startswith("Fn::"):
                raise TemplateNotEvaluable(f"{key} is not supported by the embedded IAM")
        resolved = {key: self.resolve(item) for key, item in value.items()}
        return {key: item for key, item in resolved.items() if item is not _NO_VALUE}

    def _sub(self, argument: Any) -> str:
        text, variables = (argument, {}) if isinstance(argument, str) else argument
        values = {name: self.resolve(item) for name, item in variables.items()}

        def substitute(match: re.Match[str]) -> str:
            name = match.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            if name in values:
                return str(values[name])
            if "." in name and not name.startswith("AWS::"):
                logical_id, attribute = name.split(".", 1)
                return self.get_att(logical_id, attribute)
            return str(self.ref(name))

        return re.sub(r"\$\{([^}]+)\}", substitute, text)


# --- policies ------------------------------------------------------------------------------------


@lru_cache(maxsize=4096)
def _pattern(text: str, case_sensitive: bool = True) -> re.Pattern[str]:
    regex = "".join(".*" if char == "*" else "." if char == "?" else re.escape(char) for char in text)
    return re.compile(f"^{regex}$", 0 if case_sensitive else re.IGNORECASE)


def _listed(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


@dataclass(frozen=True)
class Statement:
    source: str  # where it is in the template, e.g. "EscalateFunction/ReadPolicy"
    effect: str
    actions: tuple[str, ...]
    resources: tuple[str, ...]
    conditions: Mapping[str, Mapping[str, Any]]
    principals: tuple[str, ...] = ()  # resource policies only: role ARNs, account roots, "*", service names

    def matches(self, action: str, resource: str, context: Mapping[str, Any]) -> bool:
        if not any(_pattern(pattern, case_sensitive=False).match(action) for pattern in self.actions):
            return False
        if not any(_pattern(pattern).match(resource) for pattern in self.resources):
            return False
        return all(
            _condition_holds(operator, key, expected, context)
            for operator, tests in self.conditions.items()
            for key, expected in tests.items()
        )


def _condition_holds(operator: str, key: str, expected: Any, context: Mapping[str, Any]) -> bool:
    wanted = [str(item) for item in _listed(expected)]
    quantifier, _, base = operator.rpartition(":")
    present = key in context
    actual = [str(item) for item in _listed(context.get(key))]
    negated = "Not" in base
    if base in ("Bool",):
        return present and actual[0].lower() == wanted[0].lower()
    if base.startswith("String") or base.startswith("Arn"):
        like = base.endswith("Like")

        def one(value: str) -> bool:
            if like:
                return any(_pattern(item).match(value) for item in wanted)
            return value in wanted

        if quantifier == "ForAllValues":
            return all(one(value) for value in actual)
        if quantifier == "ForAnyValue":
            return any(one(value) for value in actual)
        if not present:
            return negated  # a missing key satisfies only the negated operators
        outcome = any(one(value) for value in actual)
        return not outcome if negated else outcome
    raise TemplateNotEvaluable(f"condition operator {operator} is not supported by the embedded IAM")


def _statements(source: str, document: Any, resource_policy: bool = False) -> list[Statement]:
    statements = []
    for index, raw in enumerate(_listed(document.get("Statement"))):
        if "NotAction" in raw or "NotResource" in raw or "NotPrincipal" in raw:
            raise TemplateNotEvaluable(f"{source}: NotAction/NotResource/NotPrincipal are not supported")
        principals: list[str] = []
        if resource_policy:
            principal = raw.get("Principal", {})
            if principal == "*":
                principals = ["*"]
            else:
                for kind in ("AWS", "Service"):
                    principals += [str(item) for item in _listed(principal.get(kind))]
        statements.append(
            Statement(
                source=f"{source}/{raw.get('Sid', index)}",
                effect=raw["Effect"],
                actions=tuple(str(action) for action in _listed(raw["Action"])),
                resources=tuple(str(resource) for resource in _listed(raw.get("Resource", "*"))),
                conditions=raw.get("Condition", {}),
                principals=tuple(principals),
            )
        )
    return statements


def _sam_policy_template(resolver: TemplateResolver, source: str, name: str, parameters: Any) -> Statement:
    """The SAM policy templates the template uses, as SAM expands them."""
    if name == "LambdaInvokePolicy":
        function = parameters["FunctionName"]
        return Statement(
            source=f"{source}/{name}",
            effect="Allow",
            actions=("lambda:InvokeFunction",),
            resources=(
                f"arn:{PARTITION}:lambda:{resolver.stack.region}:{resolver.stack.account}:function:{function}*",
            ),
            conditions={},
        )
    raise TemplateNotEvaluable(f"{source}: SAM policy template {name} is not supported by the embedded IAM")


@dataclass
class Principal:
    """A role of the stack: its ARN and its identity-based statements."""

    logical_id: str
    arn: str
    statements: list[Statement] = field(default_factory=list)


@dataclass(frozen=True)
class Check:
    """One authorisation AWS makes for a call."""

    action: str
    resource: str
    context: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Denial:
    principal: str
    action: str
    resource: str
    reason: str


class StackIam:
    """Every role, resource policy and encryption setting of the template, resolved for the embedded stack."""

    def __init__(self, resolver: TemplateResolver) -> None:
        self.resolver = resolver
        self.stack = resolver.stack
        self.principals: dict[str, Principal] = {}
        self.resource_policies: dict[str, list[Statement]] = {}  # bucket / key / role ARN -> statements
        self.bucket_keys: dict[str, str] = {}  # bucket name -> KMS key ARN of its default encryption
        self.table_keys: dict[str, str] = {}  # table name -> customer managed KMS key ARN
        self.queue_keys: dict[str, str] = {}  # queue name -> customer managed KMS key ARN
        self._load()

    @property
    def account_root(self) -> str:
        return f"arn:{PARTITION}:iam::{self.stack.account}:root"

    def role_of(self, function_logical_id: str) -> Principal:
        return self.principals[f"{function_logical_id}Role"]

    def _included(self, resource: Mapping[str, Any]) -> bool:
        condition = resource.get("Condition")
        return condition is None or self.resolver.condition(condition)

    def _load(self) -> None:  # noqa: C901 - one branch per resource type that carries permissions
        resolver = self.resolver
        resources = resolver.resources
        for logical_id, resource in resources.items():
            if not self._included(resource):
                continue
            kind, properties = resource.get("Type"), resource.get("Properties", {})
            if (
                kind in ("AWS::Serverless::Function", "AWS::Serverless::StateMachine")
                and "Role" not in properties
            ):
                role_id = f"{logical_id}Role"
                principal = Principal(role_id, resolver.arn(role_id) if kind.endswith("Function") else "")
                if not principal.arn:
                    principal.arn = (
                        f"arn:{PARTITION}:iam::{self.stack.account}:role/{resolver.physical_name(role_id)}"
                    )
                for index, policy in enumerate(_listed(properties.get("Policies"))):
                    source = f"{logical_id}/Policies[{index}]"
                    if isinstance(policy, str):
                        raise TemplateNotEvaluable(f"{source}: managed policy {policy} is not supported")
                    if "Statement" in policy:
                        principal.statements += _statements(logical_id, resolver.resolve(policy))
                    else:
                        for name, parameters in policy.items():
                            principal.statements.append(
                                _sam_policy_template(resolver, source, name, resolver.resolve(parameters))
                            )
                self.principals[role_id] = principal
            elif kind == "AWS::IAM::Role":
                principal = Principal(logical_id, resolver.arn(logical_id))
                for policy in _listed(properties.get("Policies")):
                    document = resolver.resolve(policy["PolicyDocument"])
                    principal.statements += _statements(f"{logical_id}/{policy['PolicyName']}", document)
                self.principals[logical_id] = principal
                trust = resolver.resolve(properties["AssumeRolePolicyDocument"])
                self.resource_policies[principal.arn] = _statements(f"{logical_id}/Trust", trust, True)
            elif kind == "AWS::S3::BucketPolicy":
                bucket = resolver.resolve(properties["Bucket"])
                document = resolver.resolve(properties["PolicyDocument"])
                self.resource_policies[f"arn:{PARTITION}:s3:::{bucket}"] = _statements(
                    logical_id, document, True
                )
            elif kind == "AWS::KMS::Key":
                document = resolver.resolve(properties["KeyPolicy"])
                self.resource_policies[resolver.arn(logical_id)] = _statements(logical_id, document, True)
            elif kind == "AWS::S3::Bucket":
                rules = properties.get("BucketEncryption", {}).get("ServerSideEncryptionConfiguration", [])
                for rule in rules:
                    default = rule.get("ServerSideEncryptionByDefault", {})
                    if default.get("SSEAlgorithm") == "aws:kms" and "KMSMasterKeyID" in default:
                        key = resolver.resolve(default["KMSMasterKeyID"])
                        self.bucket_keys[resolver.physical_name(logical_id)] = self._key_arn(key)
            elif kind == "AWS::SQS::Queue" and properties.get("KmsMasterKeyId"):
                key = resolver.resolve(properties["KmsMasterKeyId"])
                self.queue_keys[resolver.physical_name(logical_id)] = self._key_arn(key)
            elif kind == "AWS::DynamoDB::Table":
                sse = properties.get("SSESpecification", {})
                if sse.get("SSEEnabled") and sse.get("KMSMasterKeyId"):
                    key = resolver.resolve(sse["KMSMasterKeyId"])
                    self.table_keys[resolver.physical_name(logical_id)] = self._key_arn(key)
        # Attached policies last: the roles they name exist by now (SAM's <Function>Role among them).
        for logical_id, resource in resources.items():
            if resource.get("Type") == "AWS::IAM::Policy" and self._included(resource):
                properties = resource["Properties"]
                document = resolver.resolve(properties["PolicyDocument"])
                for role in _listed(properties.get("Roles")):
                    role_id = str(role["Ref"]) if isinstance(role, dict) and "Ref" in role else ""
                    if role_id not in self.principals:
                        raise TemplateNotEvaluable(f"{logical_id}: attached to an unknown role {role!r}")
                    self.principals[role_id].statements += _statements(logical_id, document)

    def _key_arn(self, key: str) -> str:
        if key.startswith("arn:"):
            return key
        return f"arn:{PARTITION}:kms:{self.stack.region}:{self.stack.account}:key/{key}"

    def principal_for_arn(self, arn: str) -> Principal | None:
        return next((p for p in self.principals.values() if p.arn == arn), None)

    # --- evaluation -------------------------------------------------------------------------------
    def decide(self, principal: Principal, check: Check) -> tuple[bool, list[Statement]]:
        """(allowed, the statements that allowed it). AWS's rules within one account: an explicit deny in
        any policy wins; a KMS key policy must itself allow (directly, or by trusting the account, which
        hands the decision to the identity's policy); assuming a role needs the trust policy and the
        caller's own permission; elsewhere either the identity's or the resource's policy may allow."""
        context = {"aws:PrincipalArn": principal.arn, "aws:SecureTransport": "true", **check.context}
        identity = [s for s in principal.statements if s.matches(check.action, check.resource, context)]
        if any(s.effect == "Deny" for s in identity):
            return False, []
        identity_allows = [s for s in identity if s.effect == "Allow"]
        owner = self._resource_policy_owner(check)
        if owner is None:
            return bool(identity_allows), identity_allows
        relevant = [
            s
            for s in self.resource_policies[owner]
            if s.matches(check.action, check.resource, context)
            and ("*" in s.principals or principal.arn in s.principals or self.account_root in s.principals)
        ]
        if any(s.effect == "Deny" for s in relevant):
            return False, []
        direct = [s for s in relevant if s.effect == "Allow" and principal.arn in s.principals]
        delegated = any(s.effect == "Allow" and self.account_root in s.principals for s in relevant)
        if check.action.startswith("sts:"):
            # Assuming a role takes both: the role's trust policy and the caller's own permission.
            trusted = bool(direct) or delegated
            return (True, identity_allows + direct) if trusted and identity_allows else (False, [])
        if check.action.startswith("kms:"):
            if direct:  # a key policy that names the principal is enough on its own
                return True, direct
            return (bool(identity_allows), identity_allows) if delegated else (False, [])
        allowing = identity_allows + direct
        return bool(allowing), allowing

    def _resource_policy_owner(self, check: Check) -> str | None:
        resource = check.resource
        if resource.startswith(f"arn:{PARTITION}:s3:::"):
            bucket = resource.split(":::", 1)[1].split("/", 1)[0]
            owner = f"arn:{PARTITION}:s3:::{bucket}"
            return owner if owner in self.resource_policies else None
        return resource if resource in self.resource_policies else None


# --- API calls -> IAM checks ---------------------------------------------------------------------

_S3_ACTIONS = {
    "GetObject": "s3:GetObject",
    "HeadObject": "s3:GetObject",
    "PutObject": "s3:PutObject",
    "CreateMultipartUpload": "s3:PutObject",
    "UploadPart": "s3:PutObject",
    "CompleteMultipartUpload": "s3:PutObject",
    "AbortMultipartUpload": "s3:AbortMultipartUpload",
    "ListParts": "s3:ListMultipartUploadParts",
    "DeleteObject": "s3:DeleteObject",
    "GetObjectTagging": "s3:GetObjectTagging",
    "PutObjectRetention": "s3:PutObjectRetention",
    "PutObjectLegalHold": "s3:PutObjectLegalHold",
    "GetObjectRetention": "s3:GetObjectRetention",
}
_S3_VERSIONED = {
    "GetObject": "s3:GetObjectVersion",
    "HeadObject": "s3:GetObjectVersion",
    "DeleteObject": "s3:DeleteObjectVersion",
    "GetObjectTagging": "s3:GetObjectVersionTagging",
}
_S3_BUCKET_ACTIONS = {
    "ListObjectsV2": "s3:ListBucket",
    "ListObjects": "s3:ListBucket",
    "HeadBucket": "s3:ListBucket",
    "ListObjectVersions": "s3:ListBucketVersions",
    "ListMultipartUploads": "s3:ListBucketMultipartUploads",
    "GetBucketLocation": "s3:GetBucketLocation",
}
_DYNAMODB_TRANSACT = {
    "Put": "PutItem",
    "Update": "UpdateItem",
    "Delete": "DeleteItem",
    "ConditionCheck": "ConditionCheckItem",
}


class CallMapper:
    """What AWS authorises an API call as: the (action, resource, context) checks of one call."""

    def __init__(self, iam: StackIam) -> None:
        self.iam = iam
        self.region = iam.stack.region
        self.account = iam.stack.account

    def checks(self, service: str, operation: str, params: Mapping[str, Any]) -> list[Check]:
        method = getattr(self, f"_{service.replace('-', '_')}", None)
        if method is not None:
            checks: list[Check] = method(operation, params)
            return checks
        return [Check(f"{service}:{operation}", "*")]

    def _s3(self, operation: str, params: Mapping[str, Any]) -> list[Check]:
        bucket = params.get("Bucket", "")
        if operation in _S3_BUCKET_ACTIONS:
            context = {"s3:prefix": params["Prefix"]} if "Prefix" in params else {}
            return [Check(_S3_BUCKET_ACTIONS[operation], f"arn:{PARTITION}:s3:::{bucket}", context)]
        if operation == "CopyObject":
            source = params["CopySource"]
            source_bucket, source_key = (
                (source["Bucket"], source["Key"]) if isinstance(source, dict) else source.split("/", 1)
            )
            return [
                *self._s3("GetObject", {"Bucket": source_bucket, "Key": source_key}),
                *self._s3("PutObject", {"Bucket": bucket, "Key": params["Key"]}),
            ]
        versioned = params.get("VersionId") not in (None, "null")
        action = (_S3_VERSIONED if versioned and operation in _S3_VERSIONED else _S3_ACTIONS).get(
            operation, f"s3:{operation}"
        )
        checks = [Check(action, f"arn:{PARTITION}:s3:::{bucket}/{params.get('Key', '')}")]
        key = self.iam.bucket_keys.get(bucket)
        if key:
            via = {"kms:ViaService": f"s3.{self.region}.amazonaws.com"}
            # SSE-KMS: a write asks KMS for a data key; a read (or a multipart part) decrypts one.
            if operation in ("PutObject", "CreateMultipartUpload", "CopyObject"):
                checks.append(Check("kms:GenerateDataKey", key, via))
            if operation in ("GetObject", "CompleteMultipartUpload", "UploadPart"):
                checks.append(Check("kms:Decrypt", key, via))
        return checks

    def _dynamodb(self, operation: str, params: Mapping[str, Any]) -> list[Check]:
        table_arn = f"arn:{PARTITION}:dynamodb:{self.region}:{self.account}:table/"
        tables: list[tuple[str, str, str]] = []  # (action, table, index)
        if operation in ("BatchGetItem", "BatchWriteItem"):
            tables = [(operation, table, "") for table in params.get("RequestItems", {})]
        elif operation in ("TransactWriteItems", "TransactGetItems"):
            for item in params.get("TransactItems", []):
                for kind, request in item.items():
                    action = "GetItem" if kind == "Get" else _DYNAMODB_TRANSACT[kind]
                    tables.append((action, request["TableName"], ""))
        else:
            tables = [(operation, params.get("TableName", ""), params.get("IndexName", ""))]
        checks = []
        for action, table, index in tables:
            resource = table_arn + table + (f"/index/{index}" if index else "")
            checks.append(Check(f"dynamodb:{action}", resource))
            key = self.iam.table_keys.get(table)
            if key:
                # A customer managed key: DynamoDB decrypts the table key with the caller's permissions.
                checks.append(
                    Check("kms:Decrypt", key, {"kms:ViaService": f"dynamodb.{self.region}.amazonaws.com"})
                )
        return list({(check.action, check.resource): check for check in checks}.values())

    def _sqs(self, operation: str, params: Mapping[str, Any]) -> list[Check]:
        # A queue URL is https://sqs.<region>.amazonaws.com/<account>/<name>.
        url = str(params.get("QueueUrl", ""))
        *_, account, name = ["", "", *url.rstrip("/").split("/")]
        resource = f"arn:{PARTITION}:sqs:{self.region}:{account}:{name}" if url else "*"
        # A batch is authorised as its single-message action (SQS has no IAM action of its own for one).
        checks = [Check(f"sqs:{operation.removesuffix('Batch')}", resource)]
        key = self.iam.queue_keys.get(name)
        if key and operation in ("SendMessage", "SendMessageBatch"):
            # SSE-KMS: the sender has SQS ask KMS for a data key (and SQS checks it can use it).
            via = {"kms:ViaService": f"sqs.{self.region}.amazonaws.com"}
            checks += [Check("kms:GenerateDataKey", key, via), Check("kms:Decrypt", key, via)]
        return checks

    def _sesv2(self, operation: str, params: Mapping[str, Any]) -> list[Check]:
        if operation != "SendEmail":
            return [Check(f"ses:{operation}", "*")]
        content = params.get("Content", {})
        action = "ses:SendRawEmail" if "Raw" in content else "ses:SendEmail"
        sender = params.get("FromEmailAddress") or _raw_sender(content.get("Raw", {}).get("Data", b""))
        domain = sender.rsplit("@", 1)[-1].rstrip(">").lower()
        identity = f"arn:{PARTITION}:ses:{self.region}:{self.account}:identity/"
        checks = [Check(action, identity + domain)]
        if params.get("ConfigurationSetName"):
            name = params["ConfigurationSetName"]
            checks.append(
                Check(action, f"arn:{PARTITION}:ses:{self.region}:{self.account}:configuration-set/{name}")
            )
        return checks

    def _stepfunctions(self, operation: str, params: Mapping[str, Any]) -> list[Check]:
        resource = params.get("executionArn") or params.get("stateMachineArn") or "*"
        return [Check(f"states:{operation}", resource)]

    def _sts(self, operation: str, params: Mapping[str, Any]) -> list[Check]:
        if operation == "GetCallerIdentity":
            return []  # allowed to everyone, always
        return [Check(f"sts:{operation}", params.get("RoleArn", "*"))]

    def _sns(self, operation: str, params: Mapping[str, Any]) -> list[Check]:
        return [Check(f"sns:{operation}", params.get("TopicArn", "*"))]

    def _lambda(self, operation: str, params: Mapping[str, Any]) -> list[Check]:
        action = "lambda:InvokeFunction" if operation == "Invoke" else f"lambda:{operation}"
        name = str(params.get("FunctionName", ""))
        arn = (
            name
            if name.startswith("arn:")
            else f"arn:{PARTITION}:lambda:{self.region}:{self.account}:function:{name}"
        )
        return [Check(action, arn)]


def _raw_sender(data: bytes) -> str:
    headers = message_from_bytes(data[:65536])
    found = getaddresses([headers.get("From", "")])
    return found[0][1] if found else ""


# --- enforcing it on a boto3 session -------------------------------------------------------------


_CHECKS, _BUCKET, _CALLER = "dunning_iam_checks", "dunning_iam_bucket", "dunning_iam_caller"
_DENIED_CODES = {
    "s3": ("AccessDenied", 403),
    "sts": ("AccessDenied", 403),
    "sns": ("AuthorizationError", 403),
}


@dataclass(frozen=True)
class DeniedCall:
    at: datetime
    function: str
    account_id: str
    action: str
    resource: str


@dataclass
class Decision:
    principal: str
    check: Check
    allowed_by: tuple[str, ...]


class IamEnforcer:
    """Holds the stack's IAM and installs it on the sessions the functions' runtimes use."""

    def __init__(self, iam: StackIam, clock: Any = None) -> None:
        self.iam = iam
        self.mapper = CallMapper(iam)
        self.clock = clock
        self.denied: list[DeniedCall] = []
        self.decisions: list[Decision] = []
        self.record_decisions = False
        self.on_denied: list[Any] = []  # callables told of each DeniedCall
        self._assumed: dict[str, Principal] = {}  # access key id of an assumed-role session -> its role
        self._lock = threading.Lock()

    def install(self, session: Any, principal: Principal, function: str, account_id: Any) -> None:
        """Every client made from `session` now calls AWS as `principal` (the function's role).
        `account_id` is a callable giving the account the function is working on (for the denial log)."""
        guard = _SessionGuard(self, principal, function, account_id)
        # First: the checks must see the call as the function made it (before anything rewrites it).
        session.events.register_first("before-parameter-build", guard.before_parameter_build)
        session.events.register_first("before-call", guard.before_call)
        session.events.register("after-call", guard.after_call)

    def authorize(self, principal: Principal, checks: Iterable[Check]) -> Check | None:
        """The first check AWS would refuse, or None."""
        for check in checks:
            allowed, statements = self.iam.decide(principal, check)
            if self.record_decisions:
                with self._lock:
                    self.decisions.append(
                        Decision(principal.logical_id, check, tuple(s.source for s in statements))
                    )
            if not allowed:
                return check
        return None

    def remember_assumed(self, access_key_id: str, role_arn: str) -> None:
        principal = self.iam.principal_for_arn(role_arn)
        if principal is not None:
            self._assumed[access_key_id] = principal

    def assumed(self, access_key_id: str | None) -> Principal | None:
        return self._assumed.get(access_key_id or "")


class _SessionGuard:
    def __init__(self, enforcer: IamEnforcer, principal: Principal, function: str, account_id: Any) -> None:
        self._enforcer = enforcer
        self._principal = principal
        self._function = function
        self._account_id = account_id

    def _caller(self, request_signer: Any) -> Principal:
        # A client made with an assumed role's credentials (from this session) calls as that role.
        credentials = getattr(request_signer, "_credentials", None)
        assumed = self._enforcer.assumed(getattr(credentials, "access_key", None))
        return assumed or self._principal

    def before_parameter_build(
        self, params: Mapping[str, Any], model: Any, context: dict[str, Any], **kwargs: Any
    ) -> None:
        # The API's own parameters are only seen here; before-call (which knows the signer) gets them
        # serialised, so the checks travel to it in the request context.
        context[_CHECKS] = self._enforcer.mapper.checks(model.service_model.service_name, model.name, params)
        context[_BUCKET] = params.get("Bucket", "")

    def before_call(
        self, model: Any, context: dict[str, Any], request_signer: Any = None, **kwargs: Any
    ) -> None:
        caller = self._caller(request_signer)
        context[_CALLER] = caller
        refused = self._enforcer.authorize(caller, context.get(_CHECKS, []))
        if refused is None:
            return
        at = self._enforcer.clock.now() if self._enforcer.clock else datetime.now().astimezone()
        denied = DeniedCall(
            at, self._function, str(self._account_id() or ""), refused.action, refused.resource
        )
        self._enforcer.denied.append(denied)
        for listener in self._enforcer.on_denied:
            listener(denied)
        service = model.service_model.service_name
        code, status = _DENIED_CODES.get(service, ("AccessDeniedException", 400))
        session_arn = caller.arn.replace(":iam::", ":sts::").replace(":role/", ":assumed-role/")
        message = (
            f"User: {session_arn}/{self._function} is not authorized to perform: {refused.action} on "
            f"resource: {refused.resource} because no identity-based policy allows the "
            f"{refused.action} action"
        )
        raise ClientError(
            {"Error": {"Code": code, "Message": message}, "ResponseMetadata": {"HTTPStatusCode": status}},
            model.name,
        )

    def after_call(
        self, model: Any, parsed: dict[str, Any], context: Mapping[str, Any], **kwargs: Any
    ) -> None:
        service, operation = model.service_model.service_name, model.name
        if service == "sts" and operation == "AssumeRole" and "Credentials" in parsed:
            self._enforcer.remember_assumed(
                parsed["Credentials"]["AccessKeyId"], parsed["AssumedRoleUser"]["Arn"]
            )
        # S3 answers a read of a missing object with 403, not 404, to a caller without s3:ListBucket.
        error = parsed.get("Error", {})
        missing = error.get("Code") in ("NoSuchKey", "404")
        if service == "s3" and operation in ("GetObject", "HeadObject") and missing:
            bucket = f"arn:{PARTITION}:s3:::{context.get(_BUCKET, '')}"
            caller = context.get(_CALLER, self._principal)
            if self._enforcer.authorize(caller, [Check("s3:ListBucket", bucket)]) is not None:
                parsed["Error"] = {
                    "Code": "AccessDenied" if operation == "GetObject" else "403",
                    "Message": "Access Denied",
                }
                parsed.setdefault("ResponseMetadata", {})["HTTPStatusCode"] = 403


def unused_statements(
    iam: StackIam, decisions: Sequence[Decision], principals: Iterable[str]
) -> dict[str, list[str]]:
    """Per role, the statements that allowed nothing in `decisions` (candidates for removal)."""
    used = {source for decision in decisions for source in decision.allowed_by}
    return {
        role: [
            s.source for s in iam.principals[role].statements if s.effect == "Allow" and s.source not in used
        ]
        for role in principals
    }


def sole_allowers(decisions: Sequence[Decision]) -> Iterator[tuple[str, Decision]]:
    """(statement, decision) pairs where one statement alone allowed a call: removing it denies that call."""
    for decision in decisions:
        if len(decision.allowed_by) == 1:
            yield decision.allowed_by[0], decision
