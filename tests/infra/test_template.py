"""Security properties of infra/template.yaml that users rely on, read from the template itself."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from dunning.local.embedded_aws import load_template

Template = dict[str, Any]
INFRA = Path(__file__).resolve().parents[2] / "infra"


@pytest.fixture(scope="module")
def template() -> Template:
    return load_template()


def _resources(template: Template, resource_type: str) -> dict[str, dict[str, Any]]:
    found = {
        logical_id: resource
        for logical_id, resource in template["Resources"].items()
        if resource["Type"] == resource_type
    }
    assert found, f"the template has no {resource_type}"
    return found


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _is_true(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.lower() == "true")


def test_every_bucket_blocks_all_public_access(template: Template) -> None:
    flags = ("BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets")
    for logical_id, bucket in _resources(template, "AWS::S3::Bucket").items():
        block = bucket["Properties"].get("PublicAccessBlockConfiguration", {})
        assert all(_is_true(block.get(flag)) for flag in flags), f"{logical_id}: {block}"


def test_every_bucket_is_encrypted_at_rest(template: Template) -> None:
    for logical_id, bucket in _resources(template, "AWS::S3::Bucket").items():
        rules = bucket["Properties"].get("BucketEncryption", {}).get("ServerSideEncryptionConfiguration", [])
        assert rules, f"{logical_id} has no BucketEncryption"
        for rule in rules:
            algorithm = rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"]
            assert algorithm in {"AES256", "aws:kms", "aws:kms:dsse"}, f"{logical_id}: {algorithm}"


def _denies_insecure_transport(statement: dict[str, Any]) -> bool:
    secure_transport = statement.get("Condition", {}).get("Bool", {}).get("aws:SecureTransport")
    return (
        statement.get("Effect") == "Deny"
        and statement.get("Principal") in ("*", {"AWS": "*"})
        and set(_as_list(statement.get("Action"))) & {"s3:*", "*"} != set()
        and secure_transport in (False, "false")
    )


def test_every_bucket_has_a_policy_that_denies_requests_without_tls(template: Template) -> None:
    policies = _resources(template, "AWS::S3::BucketPolicy").values()
    for logical_id in _resources(template, "AWS::S3::Bucket"):
        statements = [
            statement
            for policy in policies
            if policy["Properties"]["Bucket"] == {"Ref": logical_id}
            for statement in policy["Properties"]["PolicyDocument"]["Statement"]
        ]
        denials = [statement for statement in statements if _denies_insecure_transport(statement)]
        assert denials, f"{logical_id} has no bucket policy denying aws:SecureTransport=false"
        # The denial covers the bucket and its objects.
        resources = [resource for denial in denials for resource in _as_list(denial["Resource"])]
        assert {"Fn::GetAtt": [logical_id, "Arn"]} in resources, f"{logical_id}: {resources}"
        assert {"Fn::Sub": f"${{{logical_id}.Arn}}/*"} in resources, f"{logical_id}: {resources}"


# The only statement that may name Resource "*": Step Functions sets up its CloudWatch Logs delivery with
# these actions, which support no resource-level permissions (AWS documents Resource "*" for them).
LOG_DELIVERY_ACTIONS = frozenset({
    "logs:CreateLogDelivery", "logs:GetLogDelivery", "logs:UpdateLogDelivery", "logs:DeleteLogDelivery",
    "logs:ListLogDeliveries", "logs:PutResourcePolicy", "logs:DescribeResourcePolicies",
    "logs:DescribeLogGroups",
})  # fmt: skip
# SAM policy templates a state machine may use, and the parameter that must name a function of this stack.
STATE_MACHINE_POLICY_TEMPLATES = {"LambdaInvokePolicy": "FunctionName"}
STATE_MACHINE_NAME = "${AWS::StackName}-collections"
# ARN resource types: "<kind>/*" or "<kind>:*" grants every resource of that kind.
RESOURCE_KINDS = ("table", "index", "function", "stateMachine", "execution", "identity", "configuration-set",
                  "key", "log-group", "queue", "role")  # fmt: skip


def _sub_text(value: Any) -> str | None:
    """The text of a string or an Fn::Sub (either form); None for other intrinsics (!Ref, !GetAtt)."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and set(value) == {"Fn::Sub"}:
        sub = value["Fn::Sub"]
        return sub if isinstance(sub, str) else str(sub[0])
    return None


def _is_wildcard_resource(resource: Any) -> bool:
    """'*', a '*' inside an ARN, or a trailing '*' that stands for every resource of a kind or everything in
    a resource: ${Bucket.Arn}/*, arn:...:s3:::*, arn:...:table/*. A trailing '*' after a named prefix
    (${Bucket.Arn}/notices/*, execution:<state machine name>:*) is a scoped grant."""
    if isinstance(resource, dict) and set(resource) <= {"Ref", "Fn::GetAtt"}:
        return False  # one resource of this stack
    text = _sub_text(resource)
    if text is None:
        return True  # cannot be reviewed here (Fn::Join, Fn::If, ...): treated as broad
    return (
        text.strip() == "*"
        or "*" in text[:-1]
        or text.endswith("::*")
        or re.search(r"\$\{[^}]*\.Arn\}[/:]\*$", text) is not None
        or re.search(rf"[:/](?:{'|'.join(RESOURCE_KINDS)})[/:]\*$", text) is not None
    )


def _statements(logical_id: str, properties: dict[str, Any]) -> list[dict[str, Any]]:
    """The inline statements of a SAM function's or state machine's Policies (not its policy templates)."""
    assert "Role" not in properties, f"{logical_id}: an external role would bypass the reviewed Policies"
    statements: list[dict[str, Any]] = []
    for policy in _as_list(properties.get("Policies", [])):
        assert isinstance(policy, dict), f"{logical_id}: managed policy {policy!r} cannot be reviewed here"
        if set(policy) == {"Statement"}:
            statements.extend(policy["Statement"])
    return statements


def _check_statement(owner: str, statement: dict[str, Any], *, log_delivery_allowed: bool) -> None:
    sid = f"{owner}.{statement.get('Sid', statement)}"
    assert statement["Effect"] == "Allow", sid
    assert not {"NotAction", "NotResource", "NotPrincipal"} & set(statement), (
        f"{sid}: NotAction/NotResource/NotPrincipal grant by omission"
    )
    actions = [str(action) for action in _as_list(statement["Action"])]
    for action in actions:
        assert "*" not in action, f"{sid}: wildcard action {action}"
    resources = _as_list(statement["Resource"])
    if resources == ["*"] and log_delivery_allowed and set(actions) <= LOG_DELIVERY_ACTIONS:
        return
    for resource in resources:
        assert not _is_wildcard_resource(resource), f"{sid}: wildcard resource {resource!r}"


def test_the_wildcard_check_tells_scoped_grants_from_broad_ones() -> None:
    arn = "arn:${AWS::Partition}:states:${AWS::Region}:${AWS::AccountId}"
    broad = [
        "*",
        {"Fn::Sub": "${IngestBucket.Arn}/*"},
        {"Fn::Sub": "arn:${AWS::Partition}:s3:::*"},
        "arn:aws:s3:::*/key",
        {"Fn::Sub": "${LedgerTable.Arn}/index/*"},
        {"Fn::Sub": f"{arn}:execution:*"},
        {"Fn::Sub": "arn:${AWS::Partition}:dynamodb:${AWS::Region}:${AWS::AccountId}:table/*"},
    ]
    scoped = [
        {"Fn::Sub": "${IngestBucket.Arn}/notices/*"},
        {"Fn::Sub": f"{arn}:execution:{STATE_MACHINE_NAME}:*"},
        {"Fn::Sub": f"{arn}:execution:${{CollectionsStateMachine.Name}}:*"},
        {"Fn::Sub": "${LedgerTable.Arn}/index/due"},
        {"Fn::GetAtt": ["LedgerTable", "Arn"]},
        {"Ref": "CollectionsStateMachine"},
    ]
    assert [resource for resource in broad if not _is_wildcard_resource(resource)] == []
    assert [resource for resource in scoped if _is_wildcard_resource(resource)] == []


def test_every_function_is_granted_named_actions_on_named_resources_only(template: Template) -> None:
    for logical_id, function in _resources(template, "AWS::Serverless::Function").items():
        properties = function["Properties"]
        for policy in _as_list(properties.get("Policies", [])):
            assert isinstance(policy, dict) and set(policy) == {"Statement"}, (
                f"{logical_id}: only inline statements can be reviewed here, not {policy!r}"
            )
        statements = _statements(logical_id, properties)
        assert statements, f"{logical_id} has no policy statements"
        for statement in statements:
            _check_statement(logical_id, statement, log_delivery_allowed=False)


def test_no_deployed_function_may_scan_the_ledger(template: Template) -> None:
    """docs/data-model.md: Scan is for the local simulator and reports only; the functions use keys."""
    for logical_id, function in _resources(template, "AWS::Serverless::Function").items():
        for statement in _statements(logical_id, function["Properties"]):
            assert "dynamodb:Scan" not in _as_list(statement["Action"]), (
                f"{logical_id}: {statement.get('Sid')}"
            )


def test_the_state_machine_is_granted_function_invokes_and_log_delivery_only(template: Template) -> None:
    functions = _resources(template, "AWS::Serverless::Function")
    for logical_id, machine in _resources(template, "AWS::Serverless::StateMachine").items():
        properties = machine["Properties"]
        for policy in _as_list(properties["Policies"]):
            assert isinstance(policy, dict), (
                f"{logical_id}: managed policy {policy!r} cannot be reviewed here"
            )
            if set(policy) == {"Statement"}:
                continue
            (name, parameters), *rest = policy.items()
            assert not rest and name in STATE_MACHINE_POLICY_TEMPLATES, f"{logical_id}: policy {policy!r}"
            target = parameters[STATE_MACHINE_POLICY_TEMPLATES[name]]
            assert isinstance(target, dict) and target.get("Ref") in functions, f"{logical_id}: {policy!r}"
        for statement in _statements(logical_id, properties):
            _check_statement(logical_id, statement, log_delivery_allowed=True)


def test_every_iam_role_is_granted_named_actions_on_named_resources_only(template: Template) -> None:
    for logical_id, role in _resources(template, "AWS::IAM::Role").items():
        properties = role["Properties"]
        assert not properties.get("ManagedPolicyArns"), (
            f"{logical_id}: managed policies cannot be reviewed here"
        )
        for policy in properties["Policies"]:
            for statement in policy["PolicyDocument"]["Statement"]:
                _check_statement(
                    f"{logical_id}.{policy['PolicyName']}", statement, log_delivery_allowed=False
                )


def _encrypted_log_group(template: Template, reference: Any, owner: str) -> None:
    assert isinstance(reference, dict), f"{owner}: log group {reference!r} is not a resource of this stack"
    if "Ref" in reference:
        logical_id = reference["Ref"]
    else:
        logical_id, attribute = reference["Fn::GetAtt"]
        assert attribute == "Arn", f"{owner}: {reference!r}"
    group = template["Resources"][logical_id]
    assert group["Type"] == "AWS::Logs::LogGroup", f"{owner}: {logical_id} is a {group['Type']}"
    properties = group["Properties"]
    assert properties.get("KmsKeyId") == {"Fn::GetAtt": ["DataKey", "Arn"]}, (
        f"{owner}: {logical_id} unencrypted"
    )
    assert properties.get("RetentionInDays") == {"Ref": "LogRetentionDays"}, (
        f"{owner}: {logical_id} retention"
    )
    assert group.get("DeletionPolicy") == group.get("UpdateReplacePolicy") == "Retain", logical_id


def test_every_function_logs_to_its_own_encrypted_log_group(template: Template) -> None:
    groups: dict[str, str] = {}
    for logical_id, function in _resources(template, "AWS::Serverless::Function").items():
        reference = function["Properties"].get("LoggingConfig", {}).get("LogGroup")
        assert reference is not None, f"{logical_id} has no LoggingConfig.LogGroup"
        _encrypted_log_group(template, reference, logical_id)
        assert reference == {"Ref": reference.get("Ref")}, f"{logical_id}: {reference!r}"
        other = groups.setdefault(reference["Ref"], logical_id)
        assert other == logical_id, f"{logical_id} and {other} share {reference['Ref']}"


def test_the_state_machine_logs_errors_without_customer_data_and_is_traced(template: Template) -> None:
    for logical_id, machine in _resources(template, "AWS::Serverless::StateMachine").items():
        properties = machine["Properties"]
        assert properties["Type"] == "STANDARD", logical_id
        logging = properties["Logging"]
        assert logging["Level"] in {"ERROR", "FATAL"}, f"{logical_id}: {logging['Level']}"
        assert logging["IncludeExecutionData"] in (False, "false"), f"{logical_id} logs execution data"
        destinations = logging["Destinations"]
        assert destinations, logical_id
        for destination in destinations:
            _encrypted_log_group(template, destination["CloudWatchLogsLogGroup"]["LogGroupArn"], logical_id)
        assert _is_true(properties["Tracing"]["Enabled"]), f"{logical_id} is not traced"


def _placeholders(node: Any) -> set[str]:
    """The ${name} placeholders of every string in an ASL document (keys and values)."""
    if isinstance(node, str):
        return set(re.findall(r"\$\{([^}]+)\}", node))
    if isinstance(node, dict):
        return set().union(*(_placeholders(key) | _placeholders(value) for key, value in node.items()))
    if isinstance(node, list):
        return set().union(*(_placeholders(value) for value in node))
    return set()


def test_the_state_machine_definition_exists_and_every_placeholder_is_substituted(template: Template) -> None:
    functions = _resources(template, "AWS::Serverless::Function")
    for logical_id, machine in _resources(template, "AWS::Serverless::StateMachine").items():
        properties = machine["Properties"]
        definition_path = INFRA / properties["DefinitionUri"]
        assert definition_path.is_file(), f"{logical_id}: {definition_path} does not exist"
        definition = json.loads(definition_path.read_text(encoding="utf-8"))
        assert definition["StartAt"] in definition["States"], logical_id
        used = _placeholders(definition)
        substitutions = properties.get("DefinitionSubstitutions", {})
        assert used, f"{logical_id}: the definition uses no placeholders (hard-coded ARNs?)"
        assert used <= set(substitutions), (
            f"{logical_id}: not substituted: {sorted(used - set(substitutions))}"
        )
        assert set(substitutions) <= used, f"{logical_id}: unused: {sorted(set(substitutions) - used)}"
        for name, value in substitutions.items():
            if name.endswith("FunctionArn"):
                # The function's `live` alias: an upgrade takes effect through the alias.
                assert value == {"Ref": f"{name.removesuffix('Arn')}.Alias"}, f"{logical_id}: {name}"
                assert name.removesuffix("Arn") in functions, f"{logical_id}: {name}"
        # Every Lambda task calls a function of this stack, through a substitution; the step calls the one its
        # input names, which the scan (STEP_FUNCTION_ARN) or a step before (the payload's `functions`) chose
        # from the same substitutions.
        for state_name, state in definition["States"].items():
            if state.get("Resource") == "arn:aws:states:::lambda:invoke":
                parameters = state["Parameters"]
                if "FunctionName.$" in parameters:
                    assert parameters["FunctionName.$"] == "$.function", state_name
                    targets = list(parameters["Payload"]["functions"].values())
                    assert len(targets) == 2, state_name
                else:
                    targets = [parameters["FunctionName"]]
                for target in targets:
                    assert re.fullmatch(r"\$\{\w+FunctionArn\}", target), f"{state_name}: {target}"
    scan = functions["ScanOverdueFunction"]["Properties"]["Environment"]["Variables"]
    assert scan["STEP_FUNCTION_ARN"] == {"Ref": "SendNoticeFunction.Alias"}


def test_functions_name_the_state_machine_by_its_fixed_name(template: Template) -> None:
    """The escalate function cannot !Ref the state machine (that would be a cycle): the ARN it is granted is
    built from the state machine's fixed name, so the two must agree."""
    machine = template["Resources"]["CollectionsStateMachine"]["Properties"]
    assert machine["Name"] == {"Fn::Sub": STATE_MACHINE_NAME}, f"renamed: {machine['Name']!r}"
    prefix = "arn:${AWS::Partition}:states:${AWS::Region}:${AWS::AccountId}"
    granted = {
        str(_sub_text(resource))
        for statement in _statements(
            "EscalateFunction", template["Resources"]["EscalateFunction"]["Properties"]
        )
        if {"states:StartExecution", "states:DescribeExecution"} & set(_as_list(statement["Action"]))
        for resource in _as_list(statement["Resource"])
    }
    assert granted == {
        f"{prefix}:stateMachine:{STATE_MACHINE_NAME}",
        f"{prefix}:stateMachine:{STATE_MACHINE_NAME}:live",
    }, "StartExecution only: execution names are the idempotency key, none is described (docs/scale.md)"
    escalate = template["Resources"]["EscalateFunction"]["Properties"]
    assert escalate["Environment"]["Variables"]["STATE_MACHINE_ARN"] == {
        "Fn::Sub": f"{prefix}:stateMachine:{STATE_MACHINE_NAME}:live"
    }
    scan = template["Resources"]["ScanOverdueFunction"]["Properties"]
    assert scan["Environment"]["Variables"]["STATE_MACHINE_ARN"] == {
        "Fn::Sub": "${CollectionsStateMachine}:live"
    }


def test_the_daily_scan_runs_in_the_business_time_zone(template: Template) -> None:
    parameters = template["Parameters"]
    assert parameters["BusinessTimezone"]["Default"] == "UTC"
    schedules = _resources(template, "AWS::Scheduler::Schedule")
    # The daily scan's, and the hourly digest's (test_the_digest_runs_hourly_in_the_business_time_zone).
    assert sorted(schedules) == ["DailyScanSchedule", "HourlyDigestSchedule"], sorted(schedules)
    logical_id, schedule = "DailyScanSchedule", schedules["DailyScanSchedule"]
    properties = schedule["Properties"]
    assert properties["ScheduleExpression"] == {"Ref": "ScanSchedule"}, logical_id
    assert properties["ScheduleExpressionTimezone"] == {"Ref": "BusinessTimezone"}, logical_id
    assert properties["FlexibleTimeWindow"]["Mode"] == "OFF", logical_id
    target = properties["Target"]
    assert target["Arn"] == {"Ref": "ScanOverdueFunction.Alias"}, logical_id
    assert target["RetryPolicy"]["MaximumRetryAttempts"] > 0, logical_id
    queue = target["DeadLetterConfig"]["Arn"]["Fn::GetAtt"][0]
    assert template["Resources"][queue]["Properties"].get("KmsMasterKeyId"), f"{queue} is not encrypted"
    # The role Scheduler assumes may invoke the scan function and nothing else.
    role_id = target["RoleArn"]["Fn::GetAtt"][0]
    role = template["Resources"][role_id]["Properties"]
    principals = [s["Principal"] for s in role["AssumeRolePolicyDocument"]["Statement"]]
    assert principals == [{"Service": "scheduler.amazonaws.com"}], role_id
    invokes = [
        statement
        for policy in role["Policies"]
        for statement in policy["PolicyDocument"]["Statement"]
        if any(str(action).startswith("lambda:") for action in _as_list(statement["Action"]))
    ]
    assert [(s["Action"], s["Resource"]) for s in invokes] == [
        ("lambda:InvokeFunction", {"Ref": "ScanOverdueFunction.Alias"})
    ]


def test_the_digest_runs_hourly_in_the_business_time_zone(template: Template) -> None:
    """services.digest: the run that is the day's first in the sending window sends (its scheduled time
    decides, so a late delivery is still that hour's run); the role may invoke the digest function only."""
    properties = template["Resources"]["HourlyDigestSchedule"]["Properties"]
    assert properties["ScheduleExpression"] == "cron(5 * * * ? *)"
    assert properties["ScheduleExpressionTimezone"] == {"Ref": "BusinessTimezone"}
    target = properties["Target"]
    assert target["Arn"] == {"Ref": "DigestFunction.Alias"}
    assert "<aws.scheduler.scheduled-time>" in target["Input"]
    assert target["RetryPolicy"]["MaximumEventAgeInSeconds"] < 3600, "a run older than its hour is stale"
    role = template["Resources"][target["RoleArn"]["Fn::GetAtt"][0]]["Properties"]
    statements = [s for policy in role["Policies"] for s in policy["PolicyDocument"]["Statement"]]
    assert [(s["Action"], s["Resource"]) for s in statements] == [
        ("lambda:InvokeFunction", {"Ref": "DigestFunction.Alias"})
    ]


# The functions that send email: the notices, the legal team's case notifications (a case opened by the
# escalate function; a payment on a case applied by the ingest function) and the owners' daily digests.
EMAIL_SENDERS = frozenset({"SendNoticeFunction", "EscalateFunction", "IngestFunction", "DigestFunction"})


def test_notices_are_sent_as_the_sender_identity_only(template: Template) -> None:
    ses_arn = "arn:${AWS::Partition}:ses:${AWS::Region}:${AWS::AccountId}"
    identity = f"{ses_arn}:identity/${{SenderIdentity}}"
    configuration_set = f"{ses_arn}:configuration-set/${{NoticeConfigurationSet}}"
    assert template["Resources"]["NoticeConfigurationSet"]["Type"] == "AWS::SES::ConfigurationSet"
    for logical_id, function in _resources(template, "AWS::Serverless::Function").items():
        ses = [
            statement
            for statement in _statements(logical_id, function["Properties"])
            if any(str(action).startswith(("ses:", "sesv2:")) for action in _as_list(statement["Action"]))
        ]
        if logical_id not in EMAIL_SENDERS:
            assert not ses, f"{logical_id} may send email"
            continue
        assert ses, f"{logical_id} may not send email"
        for statement in ses:
            assert set(_as_list(statement["Action"])) <= {"ses:SendEmail", "ses:SendRawEmail"}, statement
            resources = {_sub_text(resource) for resource in _as_list(statement["Resource"])}
            assert resources == {identity, configuration_set}, resources
        variables = function["Properties"]["Environment"]["Variables"]
        assert variables["SES_CONFIGURATION_SET"] == {"Ref": "NoticeConfigurationSet"}


def test_the_configuration_set_suppresses_bounces_and_complaints(template: Template) -> None:
    properties = template["Resources"]["NoticeConfigurationSet"]["Properties"]
    assert set(properties["SuppressionOptions"]["SuppressedReasons"]) == {"BOUNCE", "COMPLAINT"}
    assert _is_true(properties["ReputationOptions"]["ReputationMetricsEnabled"])
    assert _is_true(properties["SendingOptions"]["SendingEnabled"])


def test_the_ledger_has_point_in_time_recovery_and_encryption(template: Template) -> None:
    table = template["Resources"]["LedgerTable"]
    properties = table["Properties"]
    assert _is_true(properties["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"])
    sse = properties["SSESpecification"]
    assert _is_true(sse["SSEEnabled"])
    assert sse["SSEType"] == "KMS"
    assert sse["KMSMasterKeyId"] == {"Ref": "DataKey"}
    assert _is_true(properties["DeletionProtectionEnabled"])
    assert table["DeletionPolicy"] == table["UpdateReplacePolicy"] == "Retain"


def test_the_ingest_function_runs_only_for_uploads_under_incoming_and_the_policy(template: Template) -> None:
    bucket = template["Resources"]["IngestBucket"]["Properties"]
    assert _is_true(bucket["NotificationConfiguration"]["EventBridgeConfiguration"]["EventBridgeEnabled"])
    events = template["Resources"]["IngestFunction"]["Properties"]["Events"]
    assert events
    for name, event in events.items():
        assert event["Type"] == "EventBridgeRule", f"{name}: {event['Type']}"
        pattern = event["Properties"]["Pattern"]
        assert pattern["source"] == ["aws.s3"], name
        assert pattern["detail-type"] == ["Object Created"], name
        assert pattern["detail"]["bucket"]["name"] == [{"Ref": "IngestBucket"}], name
        assert pattern["detail"]["object"]["key"] == [{"prefix": "incoming/"}, {"Ref": "PolicyKey"}], name
        # A failed delivery is retried, then kept.
        assert event["Properties"]["DeadLetterConfig"]["Arn"] == {
            "Fn::GetAtt": ["IngestDeadLetterQueue", "Arn"]
        }


# --- deliverability ----------------------------------------------------------------------------------------

DEFAULT_BUS = "arn:${AWS::Partition}:events:${AWS::Region}:${AWS::AccountId}:event-bus/default"
LEDGER_ARN = {"Fn::GetAtt": ["LedgerTable", "Arn"]}
DATA_KEY_ARN = {"Fn::GetAtt": ["DataKey", "Arn"]}


def _matches(pattern: dict[str, Any], event: dict[str, Any]) -> bool:
    """EventBridge matching for the exact-value patterns this template uses (a list of values, or nested
    fields); any other matcher fails the test that uses it, so it cannot pass by accident."""
    for field, expected in pattern.items():
        if field not in event:
            return False
        actual = event[field]
        if isinstance(expected, dict):
            if not (isinstance(actual, dict) and _matches(expected, actual)):
                return False
            continue
        assert all(isinstance(value, str) for value in expected), f"unsupported matcher in {expected!r}"
        if not set(_as_list(actual)) & set(expected):
            return False
    return True


def _resolved(node: Any, names: dict[str, str]) -> Any:
    """`node` with every {"Ref": <logical id>} in `names` replaced by the physical name given."""
    if isinstance(node, dict):
        if set(node) == {"Ref"} and node["Ref"] in names:
            return names[node["Ref"]]
        return {key: _resolved(value, names) for key, value in node.items()}
    if isinstance(node, list):
        return [_resolved(value, names) for value in node]
    return node


def test_the_ses_events_function_may_record_delivery_problems_only(template: Template) -> None:
    properties = template["Resources"]["SesEventsFunction"]["Properties"]
    granted = {
        (str(action), json.dumps(resource, sort_keys=True))
        for statement in _statements("SesEventsFunction", properties)
        for action in _as_list(statement["Action"])
        for resource in _as_list(statement["Resource"])
    }
    ledger = json.dumps(LEDGER_ARN, sort_keys=True)
    key = json.dumps(DATA_KEY_ARN, sort_keys=True)
    # What dunning.services.suppression calls: put_new and get (DELIVERY items), update (SUPPRESSED items),
    # append_events (BatchWriteItem). No reads of accounts, no deletes, no index, no other service.
    assert granted == {
        ("dynamodb:GetItem", ledger),
        ("dynamodb:PutItem", ledger),
        ("dynamodb:UpdateItem", ledger),
        ("dynamodb:BatchWriteItem", ledger),
        ("kms:Decrypt", key),
        ("kms:GenerateDataKey", key),
    }


def test_the_configuration_set_publishes_delivery_problems_to_the_default_bus(template: Template) -> None:
    from dunning.services.suppression import DESTINATION_EVENT_TYPES

    destinations = _resources(template, "AWS::SES::ConfigurationSetEventDestination")
    to_eventbridge = [
        resource["Properties"]
        for resource in destinations.values()
        if resource["Properties"]["ConfigurationSetName"] == {"Ref": "NoticeConfigurationSet"}
        and "EventBridgeDestination" in resource["Properties"]["EventDestination"]
    ]
    assert len(to_eventbridge) == 1, sorted(destinations)
    destination = to_eventbridge[0]["EventDestination"]
    assert _is_true(destination["Enabled"])
    types = set(destination["MatchingEventTypes"])
    assert {"bounce", "complaint"} <= types
    # Exactly what the handler acts on: nothing it would only ignore (opens, clicks) is published.
    assert types == set(DESTINATION_EVENT_TYPES.values())
    assert _sub_text(destination["EventBridgeDestination"]["EventBusArn"]) == DEFAULT_BUS


def test_the_ses_events_rule_takes_the_notices_bounces_complaints_and_delays(template: Template) -> None:
    from dunning.services.suppression import DETAIL_TYPES
    from tests.integration.test_ses_events import (
        CONFIGURATION_SET,
        bounce_event,
        complaint_event,
        delay_event,
    )

    events = template["Resources"]["SesEventsFunction"]["Properties"]["Events"]
    assert len(events) == 1, sorted(events)
    (name, event), *_ = events.items()
    assert event["Type"] == "EventBridgeRule", name
    pattern = event["Properties"]["Pattern"]
    assert pattern["source"] == ["aws.ses"]
    assert set(pattern["detail-type"]) == set(DETAIL_TYPES.values())
    # Only messages sent with the notices' configuration set (SES tags every event with its name).
    assert pattern["detail"]["mail"]["tags"]["ses:configuration-set"] == [{"Ref": "NoticeConfigurationSet"}]

    deployed = _resolved(pattern, {"NoticeConfigurationSet": CONFIGURATION_SET})
    for matching in (
        bounce_event("jane@example.com"),
        bounce_event("jane@example.com", "Transient", "MailboxFull"),
        complaint_event("jane@example.com"),
        delay_event("jane@example.com"),
    ):
        assert _matches(deployed, matching), matching["detail-type"]
    other_set = bounce_event("jane@example.com")
    other_set["detail"]["mail"]["tags"]["ses:configuration-set"] = ["marketing"]
    delivered = {**bounce_event("jane@example.com"), "detail-type": "Email Delivered"}
    assert not _matches(deployed, other_set)
    assert not _matches(deployed, delivered)


def test_ses_events_that_cannot_be_recorded_are_kept_in_an_encrypted_queue(template: Template) -> None:
    resources = template["Resources"]
    function = resources["SesEventsFunction"]["Properties"]
    queue_arn = {"Fn::GetAtt": ["SesEventsDeadLetterQueue", "Arn"]}
    # Both ways in: EventBridge failing to invoke the function, and the function failing every retry.
    assert function["DeadLetterQueue"] == {"Type": "SQS", "TargetArn": queue_arn}
    rule = function["Events"]["DeliveryProblem"]["Properties"]
    assert rule["DeadLetterConfig"]["Arn"] == queue_arn
    assert rule["RetryPolicy"]["MaximumRetryAttempts"] > 0
    assert resources["SesEventsDeadLetterQueue"]["Properties"]["KmsMasterKeyId"] == {"Ref": "DataKey"}
    # Only that rule may dead-letter into the queue.
    policies = [
        policy["Properties"]
        for policy in _resources(template, "AWS::SQS::QueuePolicy").values()
        if {"Ref": "SesEventsDeadLetterQueue"} in policy["Properties"]["Queues"]
    ]
    assert len(policies) == 1
    (statement,) = policies[0]["PolicyDocument"]["Statement"]
    assert statement["Principal"] == {"Service": "events.amazonaws.com"}
    assert statement["Action"] == "sqs:SendMessage"
    assert statement["Condition"]["ArnEquals"]["aws:SourceArn"] == {
        "Fn::GetAtt": ["SesEventsFunctionDeliveryProblem", "Arn"]
    }


# --- legal hand-off ----------------------------------------------------------------------------------------

LEGAL_BUCKET_ARN = {"Fn::GetAtt": ["LegalBucket", "Arn"]}
LEGAL_OBJECTS = {"Fn::Sub": "${LegalBucket.Arn}/*"}
LEGAL_CASES = {"Fn::Sub": "${LegalBucket.Arn}/cases/*"}
LEGAL_KEY_ARN = {"Fn::GetAtt": ["LegalKey", "Arn"]}
ESCALATE_ROLE_ARN = {"Fn::GetAtt": ["EscalateFunctionRole", "Arn"]}
# Who reads packets: the principal named by the parameter, else the role the stack creates.
LEGAL_TEAM_ROLE_ARN = {"Fn::GetAtt": ["LegalTeamRole", "Arn"]}
LEGAL_READERS = {"Fn::If": ["HasLegalTeamPrincipal", {"Ref": "LegalTeamPrincipalArn"}, LEGAL_TEAM_ROLE_ARN]}
WRITE_ACTIONS = {"s3:PutObject", "s3:PutObjectRetention", "s3:PutObjectLegalHold"}


def _legal_bucket_statements(template: Template) -> list[dict[str, Any]]:
    return [
        statement
        for policy in _resources(template, "AWS::S3::BucketPolicy").values()
        if policy["Properties"]["Bucket"] == {"Ref": "LegalBucket"}
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
    ]


def _evaluate_condition(template: Template, name: str, parameters: dict[str, str]) -> bool:
    """A template condition for the given parameter values (Fn::Equals, Fn::Not, Fn::And, Fn::Or over Refs
    and strings: the forms this template uses; any other fails the test)."""

    def value(node: Any) -> Any:
        if isinstance(node, dict) and set(node) == {"Ref"}:
            return parameters.get(node["Ref"], template["Parameters"][node["Ref"]].get("Default"))
        assert isinstance(node, str), f"unsupported operand {node!r}"
        return node

    def evaluate(node: Any) -> bool:
        (function, arguments), *rest = node.items()
        assert not rest, node
        if function == "Fn::Equals":
            left, right = arguments
            return bool(value(left) == value(right))
        if function == "Fn::Not":
            return not evaluate(arguments[0])
        if function == "Fn::And":
            return all(evaluate(argument) for argument in arguments)
        if function == "Fn::Or":
            return any(evaluate(argument) for argument in arguments)
        if function == "Condition":
            return evaluate(template["Conditions"][arguments])
        raise AssertionError(f"unsupported condition function {function}")

    return evaluate(template["Conditions"][name])


def test_the_legal_bucket_locks_packets_in_governance_mode_for_the_retention_parameter(
    template: Template,
) -> None:
    bucket = template["Resources"]["LegalBucket"]
    properties = bucket["Properties"]
    assert _is_true(properties["ObjectLockEnabled"])
    lock = properties["ObjectLockConfiguration"]
    assert lock["ObjectLockEnabled"] == "Enabled"
    assert lock["Rule"]["DefaultRetention"] == {"Mode": "GOVERNANCE", "Days": {"Ref": "LegalRetentionDays"}}
    assert properties["VersioningConfiguration"]["Status"] == "Enabled"
    assert bucket["DeletionPolicy"] == bucket["UpdateReplacePolicy"] == "Retain"
    # No lifecycle rule may expire locked packets behind the retention's back.
    assert "LifecycleConfiguration" not in properties
    retention = template["Parameters"]["LegalRetentionDays"]
    assert retention["Type"] == "Number"
    assert (retention["Default"], retention["MinValue"], retention["MaxValue"]) == (2555, 1, 36500)


def test_the_legal_bucket_is_encrypted_with_its_own_rotating_key(template: Template) -> None:
    properties = template["Resources"]["LegalBucket"]["Properties"]
    (rule,) = properties["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    encryption = rule["ServerSideEncryptionByDefault"]
    assert encryption == {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": LEGAL_KEY_ARN}
    assert _is_true(rule["BucketKeyEnabled"])
    key = template["Resources"]["LegalKey"]
    assert key["Type"] == "AWS::KMS::Key"
    assert _is_true(key["Properties"]["EnableKeyRotation"])
    # Packets outlive the stack (7 years by default): so must the key that decrypts them.
    assert key["DeletionPolicy"] == key["UpdateReplacePolicy"] == "Retain"


def test_the_legal_bucket_is_private_tls_only_and_access_logged(template: Template) -> None:
    properties = template["Resources"]["LegalBucket"]["Properties"]
    block = properties["PublicAccessBlockConfiguration"]
    flags = ("BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets")
    assert all(_is_true(block[flag]) for flag in flags), block
    assert properties["OwnershipControls"]["Rules"] == [{"ObjectOwnership": "BucketOwnerEnforced"}]
    assert properties["LoggingConfiguration"] == {
        "DestinationBucketName": {"Ref": "AccessLogBucket"},
        "LogFilePrefix": "legal/",
    }
    denials = [s for s in _legal_bucket_statements(template) if _denies_insecure_transport(s)]
    assert denials
    resources = [resource for denial in denials for resource in _as_list(denial["Resource"])]
    assert LEGAL_BUCKET_ARN in resources and LEGAL_OBJECTS in resources, resources


def test_only_the_escalate_function_may_write_packets(template: Template) -> None:
    # The bucket policy denies writes to every principal but the escalate function's role...
    denials = [
        statement
        for statement in _legal_bucket_statements(template)
        if statement["Effect"] == "Deny" and "s3:PutObject" in _as_list(statement["Action"])
    ]
    assert len(denials) == 1, denials
    (denial,) = denials
    assert denial["Principal"] in ("*", {"AWS": "*"})
    assert set(_as_list(denial["Action"])) >= WRITE_ACTIONS
    assert _as_list(denial["Resource"]) == [LEGAL_OBJECTS]
    assert denial["Condition"] == {"ArnNotEquals": {"aws:PrincipalArn": ESCALATE_ROLE_ARN}}
    # ...and nothing in the template grants a write on the legal bucket to anyone else.
    for statement in _legal_bucket_statements(template):
        if statement["Effect"] == "Allow":
            assert not set(_as_list(statement["Action"])) & (WRITE_ACTIONS | {"s3:*"}), statement
    assert _legal_bucket_writers(template) == {"EscalateFunctionRole"}


def _writes_legal_bucket(statement: dict[str, Any]) -> bool:
    actions = {str(action) for action in _as_list(statement["Action"])}
    return bool(actions & (WRITE_ACTIONS | {"s3:*"})) and "LegalBucket" in json.dumps(statement["Resource"])


def _legal_bucket_writers(template: Template) -> set[str]:
    """The roles any identity policy of the template lets write to the legal bucket."""
    writers: set[str] = set()
    for logical_id, function in _resources(template, "AWS::Serverless::Function").items():
        if any(map(_writes_legal_bucket, _statements(logical_id, function["Properties"]))):
            writers.add(f"{logical_id}Role")  # the role SAM generates
    for logical_id, role in _resources(template, "AWS::IAM::Role").items():
        for policy in role["Properties"].get("Policies", []):
            if any(map(_writes_legal_bucket, policy["PolicyDocument"]["Statement"])):
                writers.add(logical_id)
    for policy in _resources(template, "AWS::IAM::Policy").values():
        if any(map(_writes_legal_bucket, policy["Properties"]["PolicyDocument"]["Statement"])):
            writers.update(role["Ref"] for role in policy["Properties"]["Roles"])
    return writers


def test_the_escalate_function_writes_packets_and_reads_none(template: Template) -> None:
    resources = template["Resources"]
    function = resources["EscalateFunction"]
    # Its legal grants live outside the role (the key policy names the role): it must not run without them.
    assert "EscalateFunctionLegalPolicy" in _as_list(function.get("DependsOn", []))
    policy = resources["EscalateFunctionLegalPolicy"]["Properties"]
    assert policy["Roles"] == [{"Ref": "EscalateFunctionRole"}]
    granted = {
        (action, json.dumps(resource, sort_keys=True))
        for statement in policy["PolicyDocument"]["Statement"]
        for action in _as_list(statement["Action"])
        for resource in _as_list(statement["Resource"])
    }
    cases = json.dumps(LEGAL_CASES, sort_keys=True)
    # Writes only: links are signed by PacketLinkSignerRole (the key policy grants the role its KMS use).
    assert {grant for grant in granted if grant[0].startswith("s3:")} == {("s3:PutObject", cases)}
    assert variables_of(function)["PACKET_LINK_SIGNER_ROLE_ARN"] == SIGNER_ROLE_ARN
    variables = function["Properties"]["Environment"]["Variables"]
    assert variables["LEGAL_BUCKET"] == {"Ref": "LegalBucket"}
    assert variables["PACKET_LINK_EXPIRY_HOURS"] == {"Ref": "PacketLinkExpiryHours"}
    assert variables["LEGAL_TEAM_EMAIL"] == {
        "Fn::If": ["HasLegalTeamEmail", {"Ref": "LegalTeamEmail"}, {"Ref": "AWS::NoValue"}]
    }
    assert variables["SES_CONFIGURATION_SET"] == {"Ref": "NoticeConfigurationSet"}


def test_the_ingest_function_has_no_grant_on_packets_and_signs_links_as_the_signer(
    template: Template,
) -> None:
    properties = template["Resources"]["IngestFunction"]["Properties"]
    legal = [
        statement
        for statement in _statements("IngestFunction", properties)
        if "LegalBucket" in json.dumps(statement) or "LegalKey" in json.dumps(statement)
    ]
    assert legal == []
    assert variables_of(template["Resources"]["IngestFunction"])["PACKET_LINK_SIGNER_ROLE_ARN"] == (
        SIGNER_ROLE_ARN
    )
    variables = properties["Environment"]["Variables"]
    assert variables["LEGAL_BUCKET"] == {"Ref": "LegalBucket"}
    assert variables["PACKET_LINK_EXPIRY_HOURS"] == {"Ref": "PacketLinkExpiryHours"}
    assert variables["LEGAL_TEAM_EMAIL"]["Fn::If"][0] == "HasLegalTeamEmail"


def test_the_legal_readers_can_read_packets(template: Template) -> None:
    reads = [
        statement
        for statement in _legal_bucket_statements(template)
        if statement["Effect"] == "Allow" and "s3:GetObject" in _as_list(statement["Action"])
    ]
    assert len(reads) == 1, reads
    (read,) = reads
    assert read["Principal"] == {"AWS": LEGAL_READERS}
    assert set(_as_list(read["Action"])) == {"s3:GetObject", "s3:GetObjectVersion"}
    assert _as_list(read["Resource"]) == [LEGAL_CASES]
    key_statements = template["Resources"]["LegalKey"]["Properties"]["KeyPolicy"]["Statement"]
    decrypts = [s for s in key_statements if s["Principal"] == {"AWS": LEGAL_READERS}]
    assert len(decrypts) == 1, key_statements
    assert _as_list(decrypts[0]["Action"]) == ["kms:Decrypt"]
    # Exactly one of the two readers exists, chosen by the parameter.
    for principal, expect_role in (("", True), ("arn:aws:iam::123456789012:role/Lawyers", False)):
        parameters = {"LegalTeamPrincipalArn": principal}
        assert _evaluate_condition(template, "CreateLegalTeamRole", parameters) is expect_role
        assert _evaluate_condition(template, "HasLegalTeamPrincipal", parameters) is not expect_role
    assert template["Resources"]["LegalTeamRole"]["Condition"] == "CreateLegalTeamRole"
    assert template["Outputs"]["LegalTeamRoleArn"]["Condition"] == "CreateLegalTeamRole"
    assert template["Outputs"]["LegalBucketName"]["Value"] == {"Ref": "LegalBucket"}
    for output in ("LedgerTableName", "IngestBucketName"):
        assert output in template["Outputs"], output


def test_the_legal_key_policy_names_its_users(template: Template) -> None:
    statements = template["Resources"]["LegalKey"]["Properties"]["KeyPolicy"]["Statement"]
    for statement in statements:
        assert statement["Effect"] == "Allow", statement
        assert statement["Principal"] not in ("*", {"AWS": "*"}), statement
    escalate = [s for s in statements if s["Principal"] == {"AWS": ESCALATE_ROLE_ARN}]
    assert len(escalate) == 1
    assert set(_as_list(escalate[0]["Action"])) == {"kms:GenerateDataKey", "kms:Encrypt", "kms:Decrypt"}
    # The roles use the key through S3 only.
    for statement in statements:
        if statement["Sid"] != "AccountAdministers":
            via = statement["Condition"]["StringEquals"]["kms:ViaService"]
            assert via == {"Fn::Sub": "s3.${AWS::Region}.amazonaws.com"}, statement


def test_the_legal_team_role_reads_case_records_only(template: Template) -> None:
    role = template["Resources"]["LegalTeamRole"]["Properties"]
    (trust,) = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"AWS": {"Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:root"}}
    assert trust["Action"] == "sts:AssumeRole"
    statements = [s for policy in role["Policies"] for s in policy["PolicyDocument"]["Statement"]]
    actions = {str(action) for statement in statements for action in _as_list(statement["Action"])}
    assert actions == {"cloudformation:DescribeStacks", "dynamodb:Query", "dynamodb:GetItem", "kms:Decrypt"}
    for statement in statements:
        statement_actions = _as_list(statement["Action"])
        if any(str(action).startswith("dynamodb:") for action in statement_actions):
            # The CASES partition of the table itself (no index, nothing of the accounts).
            assert _as_list(statement["Resource"]) == [LEDGER_ARN], statement
            leading_keys = statement["Condition"]["ForAllValues:StringEquals"]
            assert statement["Condition"] == {"ForAllValues:StringEquals": leading_keys}, statement
            assert leading_keys == {"dynamodb:LeadingKeys": ["CASES"]}, statement
        elif statement_actions == ["cloudformation:DescribeStacks"]:
            assert statement["Resource"] == {"Ref": "AWS::StackId"}, statement
        else:
            assert statement["Resource"] == DATA_KEY_ARN, statement
            via = statement["Condition"]["StringEquals"]["kms:ViaService"]
            assert via == {"Fn::Sub": "dynamodb.${AWS::Region}.amazonaws.com"}, statement


SIGNER_ROLE_ARN = {"Fn::GetAtt": ["PacketLinkSignerRole", "Arn"]}


def variables_of(function: dict[str, Any]) -> dict[str, Any]:
    variables: dict[str, Any] = function["Properties"]["Environment"]["Variables"]
    return variables


def test_packet_links_are_signed_by_a_role_that_can_only_read_packets(template: Template) -> None:
    resources = template["Resources"]
    role = resources["PacketLinkSignerRole"]["Properties"]
    # Role chaining caps the session at an hour: the links' real lifetime, stated in the email.
    assert role["MaxSessionDuration"] == 3600
    (trust,) = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Action"] == "sts:AssumeRole"
    assert trust["Principal"] == {
        "AWS": [
            {"Fn::GetAtt": ["EscalateFunctionRole", "Arn"]},
            {"Fn::GetAtt": ["IngestFunctionRole", "Arn"]},
        ]
    }
    granted = {
        (action, json.dumps(resource, sort_keys=True))
        for policy in role["Policies"]
        for statement in policy["PolicyDocument"]["Statement"]
        for action in _as_list(statement["Action"])
        for resource in _as_list(statement["Resource"])
    }
    assert granted == {
        ("s3:GetObject", json.dumps(LEGAL_CASES, sort_keys=True)),
        ("kms:Decrypt", json.dumps(LEGAL_KEY_ARN, sort_keys=True)),
    }
    assert _legal_bucket_writers(template) == {"EscalateFunctionRole"}
    # Only the escalate and ingest functions may assume it, and they run only with that grant in place.
    signing = resources["PacketLinkSigning"]["Properties"]
    assert signing["Roles"] == [{"Ref": "EscalateFunctionRole"}, {"Ref": "IngestFunctionRole"}]
    (assume,) = signing["PolicyDocument"]["Statement"]
    assert (assume["Action"], assume["Resource"]) == ("sts:AssumeRole", SIGNER_ROLE_ARN)
    for function in ("EscalateFunction", "IngestFunction"):
        assert "PacketLinkSigning" in _as_list(resources[function].get("DependsOn", [])), function


def test_every_function_reads_the_policy_in_force_only(template: Template) -> None:
    active = {"Fn::Sub": "${IngestBucket.Arn}/config/active-policy.json"}
    uploaded = {"Fn::Sub": "${IngestBucket.Arn}/${PolicyKey}"}
    functions = (
        "IngestFunction",
        "ScanOverdueFunction",
        "EscalateFunction",
        "SendNoticeFunction",
        "DigestFunction",
    )
    for logical_id in functions:
        properties = template["Resources"][logical_id]["Properties"]
        assert properties["Environment"]["Variables"]["ACTIVE_POLICY_KEY"] == "config/active-policy.json"
        grants = {
            (str(action), json.dumps(resource, sort_keys=True))
            for statement in _statements(logical_id, properties)
            for action in _as_list(statement["Action"])
            for resource in _as_list(statement["Resource"])
        }
        assert ("s3:GetObject", json.dumps(active, sort_keys=True)) in grants, logical_id
        writes = ("s3:PutObject", json.dumps(active, sort_keys=True)) in grants
        upload = json.dumps(uploaded, sort_keys=True)
        reads_upload = any(resource == upload for _, resource in grants)
        # Only the ingest function reads the upload (to validate it) and writes the policy in force.
        assert writes is reads_upload is (logical_id == "IngestFunction"), logical_id


def test_packet_links_expire_within_seven_days(template: Template) -> None:
    expiry = template["Parameters"]["PacketLinkExpiryHours"]
    assert expiry["Type"] == "Number"
    assert (expiry["Default"], expiry["MinValue"], expiry["MaxValue"]) == (72, 1, 168)


def test_the_legal_parameters_validate_their_values(template: Template) -> None:
    email = re.compile(template["Parameters"]["LegalTeamEmail"]["AllowedPattern"])
    assert template["Parameters"]["LegalTeamEmail"]["Default"] == ""
    for good in ("", "legal@example.com", "collections.team@law-firm.co.uk"):
        assert email.fullmatch(good), good
    for bad in ("legal", "legal@", "@example.com", "a b@example.com", "legal@example"):
        assert not email.fullmatch(bad), bad
    principal = re.compile(template["Parameters"]["LegalTeamPrincipalArn"]["AllowedPattern"])
    assert template["Parameters"]["LegalTeamPrincipalArn"]["Default"] == ""
    for good in ("", "arn:aws:iam::123456789012:role/Lawyers", "arn:aws:iam::123456789012:user/jane"):
        assert principal.fullmatch(good), good
    for bad in ("Lawyers", "arn:aws:s3:::bucket", "arn:aws:iam::123:role/x"):
        assert not principal.fullmatch(bad), bad


def test_every_standalone_iam_policy_grants_named_actions_on_named_resources_of_a_stack_role(
    template: Template,
) -> None:
    roles = set(_resources(template, "AWS::IAM::Role")) | {
        f"{logical_id}Role"
        for logical_id, function in _resources(template, "AWS::Serverless::Function").items()
        if "Role" not in function["Properties"]
    }
    for logical_id, policy in _resources(template, "AWS::IAM::Policy").items():
        properties = policy["Properties"]
        assert not {"Users", "Groups"} & set(properties), logical_id
        for role in properties["Roles"]:
            assert isinstance(role, dict) and role.get("Ref") in roles, f"{logical_id}: {role!r}"
        for statement in properties["PolicyDocument"]["Statement"]:
            _check_statement(logical_id, statement, log_delivery_allowed=False)


# --- operations: alarms, the alert topic, the dashboard, aliases ----------------------------------------


def _alarms(template: Template) -> dict[str, dict[str, Any]]:
    return {
        logical_id: alarm["Properties"]
        for logical_id, alarm in _resources(template, "AWS::CloudWatch::Alarm").items()
    }


def _watched(alarm: dict[str, Any]) -> tuple[str, str, str]:
    dimensions = {d["Name"]: d["Value"] for d in alarm.get("Dimensions", [])}
    return alarm["Namespace"], alarm["MetricName"], json.dumps(dimensions, sort_keys=True)


def _function_timeout_ms(template: Template, logical_id: str) -> int:
    properties = template["Resources"][logical_id]["Properties"]
    return int(properties.get("Timeout", template["Globals"]["Function"]["Timeout"])) * 1000


def test_alerts_go_to_a_topic_encrypted_with_the_stacks_key_that_cloudwatch_may_publish_to(
    template: Template,
) -> None:
    resources = template["Resources"]
    topic = resources["AlertTopic"]
    assert topic["Type"] == "AWS::SNS::Topic"
    assert topic["Properties"]["KmsMasterKeyId"] == {"Ref": "DataKey"}
    # The topic policy: CloudWatch may publish, for alarms of this account only.
    (policy,) = [p["Properties"] for p in _resources(template, "AWS::SNS::TopicPolicy").values()]
    assert policy["Topics"] == [{"Ref": "AlertTopic"}]
    (statement,) = policy["PolicyDocument"]["Statement"]
    assert statement["Effect"] == "Allow" and statement["Principal"] == {
        "Service": "cloudwatch.amazonaws.com"
    }
    assert statement["Action"] == "sns:Publish" and statement["Resource"] == {"Ref": "AlertTopic"}
    assert statement["Condition"]["StringEquals"]["aws:SourceAccount"] == {"Ref": "AWS::AccountId"}
    # The key policy lets CloudWatch use the key for that, under the same conditions.
    (grant,) = [
        s
        for s in resources["DataKey"]["Properties"]["KeyPolicy"]["Statement"]
        if s["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
    ]
    assert set(grant["Action"]) == {"kms:Decrypt", "kms:GenerateDataKey"}
    assert grant["Condition"]["StringEquals"]["aws:SourceAccount"] == {"Ref": "AWS::AccountId"}
    assert (
        grant["Condition"]["ArnLike"]["aws:SourceArn"] == statement["Condition"]["ArnLike"]["aws:SourceArn"]
    )
    # Every alarm's name falls under that condition.
    pattern = str(_sub_text(grant["Condition"]["ArnLike"]["aws:SourceArn"]))
    assert pattern.endswith(":alarm:${AWS::StackName}-*"), pattern
    for logical_id, alarm in _alarms(template).items():
        assert str(_sub_text(alarm["AlarmName"])).startswith("${AWS::StackName}-"), logical_id


def test_the_alert_email_is_subscribed_only_when_given(template: Template) -> None:
    parameter = template["Parameters"]["AlertEmail"]
    assert parameter["Default"] == ""
    allowed = re.compile(parameter["AllowedPattern"])
    assert allowed.fullmatch("") and allowed.fullmatch("ops@yourcompany.example")
    assert not allowed.fullmatch("not an address")
    (subscription,) = _resources(template, "AWS::SNS::Subscription").values()
    assert subscription["Condition"] == "HasAlertEmail"
    assert subscription["Properties"] == {
        "TopicArn": {"Ref": "AlertTopic"},
        "Protocol": "email",
        "Endpoint": {"Ref": "AlertEmail"},
    }
    assert _evaluate_condition(template, "HasAlertEmail", {"AlertEmail": "ops@yourcompany.example"})
    assert not _evaluate_condition(template, "HasAlertEmail", {"AlertEmail": ""})


def test_every_alarm_alerts_the_topic_and_no_data_is_no_alarm(template: Template) -> None:
    for logical_id, alarm in _alarms(template).items():
        assert alarm["AlarmActions"] == [{"Ref": "AlertTopic"}], logical_id
        assert alarm["OKActions"] == [{"Ref": "AlertTopic"}], logical_id
        assert alarm["TreatMissingData"] == "notBreaching", logical_id
        assert alarm["ComparisonOperator"] == "GreaterThanThreshold", logical_id
        assert alarm.get("AlarmDescription"), f"{logical_id}: say what to do"


def test_the_alarms_watch_exactly_the_metrics_operations_need(template: Template) -> None:
    from dunning.adapters import metrics

    machine = {"StateMachineArn": {"Ref": "CollectionsStateMachine"}}
    functions = _resources(template, "AWS::Serverless::Function")
    dead_letter_queues = [q for q in _resources(template, "AWS::SQS::Queue") if q.endswith("DeadLetterQueue")]
    assert sorted(dead_letter_queues) == [
        "IngestDeadLetterQueue",
        "ScanDeadLetterQueue",
        "SesEventsDeadLetterQueue",
    ]
    scan = {"FunctionName": {"Ref": "ScanOverdueFunction"}}
    expected: dict[tuple[str, str, str], tuple[str, float]] = {
        **{
            ("AWS/States", name, json.dumps(machine, sort_keys=True)): ("Sum", 0)
            for name in ("ExecutionsFailed", "ExecutionsTimedOut", "ExecutionsAborted")
        },
        **{
            (
                "AWS/SQS",
                "ApproximateNumberOfMessagesVisible",
                json.dumps({"QueueName": {"Fn::GetAtt": [queue, "QueueName"]}}, sort_keys=True),
            ): ("Maximum", 0)
            for queue in dead_letter_queues
        },
        **{
            ("AWS/Lambda", name, json.dumps({"FunctionName": {"Ref": function}}, sort_keys=True)): ("Sum", 0)
            for function in functions
            for name in ("Errors", "Throttles")
        },
        ("AWS/Lambda", "Duration", json.dumps(scan, sort_keys=True)): (
            "Maximum",
            0.8 * _function_timeout_ms(template, "ScanOverdueFunction"),
        ),
        **{
            (metrics.NAMESPACE, name, json.dumps({"service": metrics.SERVICE}, sort_keys=True)): ("Sum", 0)
            for name in metrics.ALARMED
        },
        ("AWS/SES", "Reputation.BounceRate", "{}"): ("Maximum", 0.05),
        ("AWS/SES", "Reputation.ComplaintRate", "{}"): ("Maximum", 0.001),
    }
    watched = {
        _watched(alarm): (alarm["Statistic"], float(alarm["Threshold"]))
        for alarm in _alarms(template).values()
    }
    assert len(watched) == len(_alarms(template)), "two alarms watch the same metric"
    assert watched == expected
    # The service dimension is the one Powertools adds: the functions' POWERTOOLS_SERVICE_NAME.
    variables = template["Globals"]["Function"]["Environment"]["Variables"]
    assert variables["POWERTOOLS_SERVICE_NAME"] == metrics.SERVICE
    assert variables["POWERTOOLS_METRICS_NAMESPACE"] == metrics.NAMESPACE


# services count through their ports.Counter: `books.counter.count(NOTICE_FAILED)`.
_COUNTED = re.compile(r"counter\.count\(\s*([A-Z_]+)")
_ADDED = re.compile(r"add_metric\(\s*name\s*=\s*(?:\"([A-Za-z_.]+)\"|metrics\.([A-Z_]+))")


def _emitted_metric_names() -> set[str]:
    """Every metric name our code emits with a literal or a metric constant (dunning.ports names them)."""
    from dunning.adapters import metrics

    root = INFRA.parent
    names: set[str] = set()
    for path in [*(root / "src" / "dunning").rglob("*.py"), *(root / "functions").rglob("*.py")]:
        text = path.read_text(encoding="utf-8")
        names |= {getattr(metrics, constant) for constant in _COUNTED.findall(text)}
        for literal, constant in _ADDED.findall(text):
            names.add(literal or getattr(metrics, constant))
    return names


def test_the_metrics_our_code_emits_for_alarms_are_exactly_those_the_alarms_watch(template: Template) -> None:
    """Alarm-worthy metrics are named in CamelCase (dunning.adapters.metrics); the snake_case ones are
    activity counts for the dashboard. A renamed or a forgotten metric would leave an alarm watching
    nothing."""
    from dunning.adapters import metrics

    alarmed = {
        alarm["MetricName"] for alarm in _alarms(template).values() if alarm["Namespace"] == metrics.NAMESPACE
    }
    assert alarmed == metrics.ALARMED
    emitted = {name for name in _emitted_metric_names() if name[:1].isupper()}
    assert emitted == alarmed


def _dashboard(template: Template) -> dict[str, Any]:
    (dashboard,) = _resources(template, "AWS::CloudWatch::Dashboard").values()
    body = str(_sub_text(dashboard["Properties"]["DashboardBody"]))
    parsed: dict[str, Any] = json.loads(body)
    return parsed


def test_the_dashboard_shows_every_alarm_and_every_alarmed_metric(template: Template) -> None:
    widgets = _dashboard(template)["widgets"]
    (alarm_widget,) = [w for w in widgets if w["type"] == "alarm"]
    assert alarm_widget["properties"]["alarms"] == [
        f"${{{logical_id}.Arn}}" for logical_id in _alarms(template)
    ]
    shown: set[tuple[str, str]] = set()
    for widget in widgets:
        namespace = metric = ""
        for row in widget["properties"].get("metrics", []):
            namespace = namespace if row[0] == "." else row[0]
            metric = metric if row[1] == "." else row[1]
            shown.add((namespace, metric))
    assert {(alarm["Namespace"], alarm["MetricName"]) for alarm in _alarms(template).values()} <= shown


def test_every_function_and_the_state_machine_publish_a_live_alias(template: Template) -> None:
    assert template["Globals"]["Function"]["AutoPublishAlias"] == "live"
    # A new layer (the domain code) must publish new function versions, or `live` would keep the old one.
    for logical_id, function in _resources(template, "AWS::Serverless::Function").items():
        assert _is_true(function["Properties"].get("AutoPublishAliasAllProperties")), logical_id
        assert function["Properties"].get("AutoPublishAlias", "live") == "live", logical_id
    for logical_id, layer in _resources(template, "AWS::Serverless::LayerVersion").items():
        assert _is_true(layer["Properties"].get("PublishLambdaVersion")), logical_id
    machine = template["Resources"]["CollectionsStateMachine"]["Properties"]
    assert machine["AutoPublishAlias"] == "live"
    invokes = [
        statement
        for statement in _statements("CollectionsStateMachine", machine)
        if "lambda:InvokeFunction" in _as_list(statement["Action"])
    ]
    targets = [resource for statement in invokes for resource in _as_list(statement["Resource"])]
    aliases = list(machine["DefinitionSubstitutions"].values())
    # The aliases the definition calls, and the same functions unqualified (for executions started by an
    # older definition): nothing else.
    unqualified = [{"Fn::GetAtt": [alias["Ref"].removesuffix(".Alias"), "Arn"]} for alias in aliases]
    assert targets == aliases + unqualified


def test_every_layer_is_built_by_its_makefile_target(template: Template) -> None:
    # The python3.12 build method copies all of ContentUri (src/, local tooling included); infra/layer/
    # Makefile picks what the functions import instead (tests/infra/test_packaging.py builds one, looks in).
    for logical_id, layer in _resources(template, "AWS::Serverless::LayerVersion").items():
        metadata = layer.get("Metadata") or {}
        assert metadata.get("BuildMethod") == "makefile", logical_id
        makefile = INFRA / metadata["ContextPath"] / "Makefile"
        assert re.search(rf"^build-{logical_id}:", makefile.read_text(encoding="utf-8"), re.MULTILINE), (
            f"{makefile} has no build-{logical_id} target"
        )
        assert metadata.get("BuildArchitecture") in layer["Properties"]["CompatibleArchitectures"], logical_id


# --- paced sending ------------------------------------------------------------------------------------------


def test_every_lambda_task_absorbs_lambda_throttling_before_anything_else() -> None:
    """A burst over the account's Lambda concurrency (10 on a new account) is retried, jittered, for long
    enough to drain: never a failed execution (docs/scale.md)."""
    definition = json.loads(
        (Path(__file__).resolve().parents[2] / "infra/statemachine/collections.asl.json").read_text()
    )
    tasks = {
        name: state
        for name, state in definition["States"].items()
        if state["Type"] == "Task" and state["Resource"] == "arn:aws:states:::lambda:invoke"
    }
    assert sorted(tasks) == ["RecordFailure", "Step"]
    for name, state in tasks.items():
        retries = state["Retry"]
        (throttle,) = [r for r in retries if "Lambda.TooManyRequestsException" in r["ErrorEquals"]]
        assert throttle["ErrorEquals"] == ["Lambda.TooManyRequestsException"], name
        assert retries.index(throttle) < len(retries) - 1 and retries[-1]["ErrorEquals"] == ["States.ALL"], (
            name
        )
        assert throttle["MaxAttempts"] >= 12 and throttle["JitterStrategy"] == "FULL", name
        assert throttle["MaxDelaySeconds"] >= 300, name


def test_the_scan_pages_come_off_a_queue_that_dead_letters_and_at_most_two_at_once(
    template: Template,
) -> None:
    scan = template["Resources"]["ScanOverdueFunction"]["Properties"]
    pages = scan["Events"]["ScanPages"]["Properties"]
    assert pages["Queue"] == {"Fn::GetAtt": ["ScanPageQueue", "Arn"]} and 1 <= pages["BatchSize"] <= 10
    # A page that fails comes back alone: the batch's other pages are not scanned again.
    assert pages["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert pages["ScalingConfig"]["MaximumConcurrency"] == 2
    queue = template["Resources"]["ScanPageQueue"]["Properties"]
    assert queue["KmsMasterKeyId"] == {"Ref": "DataKey"}
    assert queue["RedrivePolicy"]["deadLetterTargetArn"] == {"Fn::GetAtt": ["ScanDeadLetterQueue", "Arn"]}
    assert queue["VisibilityTimeout"] >= 6 * template["Globals"]["Function"]["Timeout"]
