"""CONTRACT 14: a policy uploaded to the stack's bucket takes effect within 5 minutes in every function; an
invalid one is rejected with a clear report and the previous one stays in force; a malformed active policy
never breaks a function."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta
from typing import Any

from dunning.adapters.ledger import Ledger
from dunning.adapters.policy_store import ACTIVE_POLICY_KEY, POLICY_MAX_AGE, ActivePolicy
from dunning.adapters.storage import ObjectStore
from dunning.domain.policy import Policy, policy_json
from dunning.local.embedded_aws import POLICY_KEY, EmbeddedAws, invoke_handler
from tests.integration.test_ingest_invoices import XERO_HEADER, _xero
from tests.support.files import csv_bytes

MONTH_FIRST = b"imports:\n  xero_date_format: MM/DD/YYYY\n"
DAY_FIRST = b"imports:\n  xero_date_format: DD/MM/YYYY\nmin_gap_days: 5\n"


def _upload_policy(aws: EmbeddedAws, body: bytes) -> dict[str, Any]:
    """What a business does: put the file at the stack's PolicyKey; S3 tells the ingest function."""
    from functions.ingest import app

    aws.s3.put_object(Bucket=aws.bucket, Key=POLICY_KEY, Body=body)
    result: dict[str, Any] = invoke_handler(
        app.handler, aws.upload_event(POLICY_KEY, aws.now()), "dunning-ingest"
    )
    return result


def _import_xero(aws: EmbeddedAws, ledger: Ledger, number: str) -> tuple[str, str]:
    """Import a Xero invoice dated 11/04/2026, due 12/04/2026: (issued_on, due_on) as the ingest read them."""
    rows = [_xero("US Corp", number, "11/04/2026", "12/04/2026", "10.00", "0.00", "Item", "10.00")]
    aws.upload("invoices", f"xero-{number}.csv", csv_bytes(XERO_HEADER, rows), aws.now())
    item = ledger.get("ACCOUNT#US Corp", f"INVOICE#{number}")
    assert item is not None
    return item["issued_on"], item["due_on"]


def _later(aws: EmbeddedAws, minutes: int) -> None:
    aws.run_until(aws.now() + timedelta(minutes=minutes))


def _active(aws: EmbeddedAws) -> bytes:
    body: bytes = aws.s3.get_object(Bucket=aws.bucket, Key=ACTIVE_POLICY_KEY)["Body"].read()
    return body


def test_an_uploaded_policy_is_in_force_in_the_functions_within_5_minutes(
    aws: EmbeddedAws, ledger: Ledger
) -> None:
    assert timedelta(minutes=5) >= POLICY_MAX_AGE
    assert _import_xero(aws, ledger, "U-1") == ("2026-04-11", "2026-04-12"), "the default: day first"

    result = _upload_policy(aws, MONTH_FIRST)
    (summary,) = result["imports"]
    assert (summary["kind"], summary["imported"], summary["report_key"]) == ("policy", 1, None)
    assert json.loads(_active(aws))["imports"]["xero_date_format"] == "MM/DD/YYYY"

    _later(aws, 5)
    assert _import_xero(aws, ledger, "U-2") == ("2026-11-04", "2026-12-04"), "the new policy, 5 minutes on"


def test_an_invalid_policy_is_reported_and_the_previous_one_stays_in_force(
    aws: EmbeddedAws, ledger: Ledger
) -> None:
    _upload_policy(aws, MONTH_FIRST)
    in_force = _active(aws)

    result = _upload_policy(
        aws, b"min_gap_days: -4\nsending_window: {start: '18:00', end: '09:00'}\nbogus: 1\n"
    )
    (summary,) = result["imports"]
    assert summary["rejected"] == 1 and summary["report_key"] == "rejected/policy.yaml.errors.csv"
    report = aws.s3.get_object(Bucket=aws.bucket, Key=summary["report_key"])["Body"].read().decode()
    rows = list(csv.DictReader(io.StringIO(report)))
    assert {row["row"] for row in rows} == {"0"}
    by_field = {row["field"]: row for row in rows}
    assert by_field["min_gap_days"]["value"] == "-4"  # a plain number stays a number
    assert "greater than or equal to 0" in by_field["min_gap_days"]["error"]
    assert "sending_window" in by_field and "bogus" in by_field
    assert _active(aws) == in_force, "the active policy is untouched"

    _later(aws, 10)
    assert _import_xero(aws, ledger, "U-3") == ("2026-11-04", "2026-12-04"), "the previous policy"

    # Unreadable YAML is reported too; a corrected upload then removes the report.
    (summary,) = _upload_policy(aws, b"min_gap_days: [unclosed\n")["imports"]
    assert summary["rejected"] == 1
    _upload_policy(aws, DAY_FIRST)
    listed = aws.s3.list_objects_v2(Bucket=aws.bucket, Prefix="rejected/policy.yaml")
    assert listed.get("KeyCount", 0) == 0, "the stale report is removed"
    assert json.loads(_active(aws))["min_gap_days"] == 5


def test_a_malformed_active_policy_never_breaks_a_function(aws: EmbeddedAws, ledger: Ledger) -> None:
    _upload_policy(aws, MONTH_FIRST)
    _later(aws, 5)
    assert _import_xero(aws, ledger, "U-4") == ("2026-11-04", "2026-12-04")
    # Written past the ingest's validation (by hand, or by a newer version of dunning).
    aws.s3.put_object(Bucket=aws.bucket, Key=ACTIVE_POLICY_KEY, Body=b"{not json: [")
    _later(aws, 5)
    assert _import_xero(aws, ledger, "U-5") == ("2026-11-04", "2026-12-04"), "the policy in force stays"
    # A function that starts cold on a malformed active policy runs on the defaults.
    cold = ActivePolicy(ObjectStore(aws.s3), aws.bucket, ACTIVE_POLICY_KEY, lambda: _Clock(aws))
    assert cold.current() == Policy()


class _CountingS3:
    """An S3 client that counts full reads of the active policy (a 304 is not one)."""

    def __init__(self, s3: Any) -> None:
        self._s3 = s3
        self.bodies = 0

    def get_object(self, **kwargs: Any) -> Any:
        response = self._s3.get_object(**kwargs)
        self.bodies += 1
        return response


class _Clock:
    def __init__(self, aws: EmbeddedAws) -> None:
        self.aws = aws

    def now(self) -> Any:
        return self.aws.now()


def test_the_active_policy_is_re_read_when_stale_and_cheaply_when_unchanged(aws: EmbeddedAws) -> None:
    _upload_policy(aws, MONTH_FIRST)
    counting = _CountingS3(aws.s3)
    active = ActivePolicy(ObjectStore(counting), aws.bucket, ACTIVE_POLICY_KEY, lambda: _Clock(aws))
    first = active.current()
    assert first.imports.xero_date_format == "MM/DD/YYYY" and counting.bodies == 1
    _later(aws, 1)
    assert active.current() is first and counting.bodies == 1, "cached"
    _later(aws, 5)
    assert active.current() is first and counting.bodies == 1, "unchanged: S3 answered 304, no body"
    aws.s3.put_object(Bucket=aws.bucket, Key=ACTIVE_POLICY_KEY, Body=policy_json(Policy(min_gap_days=9)))
    _later(aws, 5)
    assert active.current().min_gap_days == 9 and counting.bodies == 2
    aws.s3.delete_object(Bucket=aws.bucket, Key=ACTIVE_POLICY_KEY)
    _later(aws, 5)
    assert active.current() == Policy(), "no active policy: the defaults"
