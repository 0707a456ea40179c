"""Security properties of infra/template.yaml that users rely on, read from the template itself."""

from __future__ import annotations

from typing import Any

import pytest

from dunning.local import load_template

Template = dict[str, Any]


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


def test_the_ingest_function_is_granted_named_actions_on_named_resources_only(template: Template) -> None:
    properties = template["Resources"]["IngestFunction"]["Properties"]
    assert "Role" not in properties, "an external role would bypass the reviewed Policies"
    statements: list[dict[str, Any]] = []
    for policy in properties["Policies"]:
        assert isinstance(policy, dict) and set(policy) == {"Statement"}, (
            f"only inline statements can be reviewed here, not {policy!r}"
        )
        statements.extend(policy["Statement"])
    assert statements
    for statement in statements:
        sid = statement.get("Sid", statement)
        assert statement["Effect"] == "Allow", sid
        assert not {"NotAction", "NotResource"} & set(statement), (
            f"{sid}: NotAction/NotResource grant by omission"
        )
        for action in _as_list(statement["Action"]):
            assert action != "*" and not action.endswith(":*"), f"{sid}: wildcard action {action}"
        for resource in _as_list(statement["Resource"]):
            assert resource != "*", f"{sid}: Resource '*'"


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


def test_the_ingest_function_runs_only_for_uploads_under_incoming(template: Template) -> None:
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
        assert pattern["detail"]["object"]["key"] == [{"prefix": "incoming/"}], name
        # A failed delivery is retried, then kept.
        assert event["Properties"]["DeadLetterConfig"]["Arn"] == {
            "Fn::GetAtt": ["IngestDeadLetterQueue", "Arn"]
        }
