"""A policy uploaded to the stack's PolicyKey: validated by the ingest function, then put in force.

Every function reads the policy from the active key (`ActivePolicy`), never the business's upload itself:
a policy that validates is written there as canonical JSON (and a stale reject report is removed); one that
does not gets `rejected/<file name>.errors.csv` (`row,field,value,error`: row 0, the setting's path, the value
given, the reason) and the active policy is left as it was, so the previous policy stays in force.
"""

from __future__ import annotations

import logging

from dunning.domain.policy import PolicyError, PolicyProblem, parse_policy, policy_json
from dunning.ingest.csvfile import RejectReport
from dunning.ingest.run import ImportSummary
from dunning.ports import ObjectGone, PolicyFiles

logger = logging.getLogger(__name__)

KIND = "policy"


def install_policy(
    store: PolicyFiles, bucket: str, policy_key: str, active_key: str, rejected_prefix: str = "rejected/"
) -> ImportSummary | None:
    """Validate the object at `policy_key` (its latest version: a late, re-delivered event for an older
    upload then installs the newest one, never the older) and put it in force. None when it is gone."""
    summary = ImportSummary(key=policy_key, kind=KIND, format="policy", rows=1)
    if policy_key == active_key:
        raise ValueError("the policy upload key and the active policy key must differ")
    try:
        read = store.read_if_changed(bucket, policy_key, None)
    except ObjectGone:
        logger.warning("The uploaded policy no longer exists; the policy in force stays")
        return None
    assert read is not None
    body, _ = read
    report_key = f"{rejected_prefix}{policy_key.rsplit('/', 1)[-1]}.errors.csv"
    try:
        policy = parse_policy(body.decode("utf-8"), policy_key)
    except UnicodeDecodeError:
        problems: tuple[PolicyProblem, ...] = (PolicyProblem("(file)", "", "the file is not UTF-8 text"),)
    except PolicyError as exc:
        problems = exc.problems
    else:
        canonical = policy_json(policy).encode("utf-8")
        if _active_bytes(store, bucket, active_key) == canonical:
            summary.unchanged = 1
        else:
            store.put(bucket, active_key, canonical, "application/json")
            summary.imported = 1
        if any(key == report_key for key, _ in store.list(bucket, report_key)):
            store.delete(bucket, report_key)  # it described an earlier, refused upload
        logger.info("Policy validated and in force")
        return summary
    report = RejectReport()
    try:
        for problem in problems:
            report.add(0, problem.field, problem.value, problem.error)
        store.put(bucket, report_key, report.stream(), "text/csv; charset=utf-8")
    finally:
        report.close()
    summary.rejected = 1
    summary.report_key = report_key
    logger.error("Policy refused; the policy in force stays (report: %s)", report_key)
    return summary


def _active_bytes(store: PolicyFiles, bucket: str, key: str) -> bytes | None:
    try:
        read = store.read_if_changed(bucket, key, None)
    except ObjectGone:
        return None
    return read[0] if read else None
