"""The collections policy: the business's defaults and rules, validated by pydantic.

A policy file is JSON or YAML. Anything it leaves out takes the default shown here, so the smallest
valid policy is an empty file ({}).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from dunning.models import LocaleCode, TimeZoneName
from dunning.storage import ObjectGone, ObjectStore


class PolicyError(ValueError):
    """A policy file that cannot be used, with a message that says where and why."""


class ImportRules(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    # Xero writes dates in the organisation's regional format; day first unless the business says so.
    xero_date_format: Literal["DD/MM/YYYY", "MM/DD/YYYY"] = "DD/MM/YYYY"


class Policy(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    business_timezone: TimeZoneName = "UTC"
    default_locale: LocaleCode = "en"
    # Customers without a `timezone` column are taken to live in the business's time zone.
    default_timezone: TimeZoneName | None = None
    imports: ImportRules = ImportRules()

    @property
    def customer_timezone_default(self) -> str:
        return self.default_timezone or self.business_timezone


DEFAULT_POLICY = Policy()


def parse_policy(text: str, source: str = "policy") -> Policy:
    try:
        data = yaml.safe_load(text) if text.strip() else {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "syntax error"
        raise PolicyError(f"{source}: not valid JSON or YAML{where}: {problem}") from exc
    if not isinstance(data, dict):
        raise PolicyError(f"{source}: the policy must be a mapping of settings")
    try:
        return Policy.model_validate(data)
    except ValidationError as exc:
        details = "; ".join(
            f"{'.'.join(str(part) for part in error['loc']) or '(top level)'}: {error['msg']}"
            for error in exc.errors(include_url=False)
        )
        raise PolicyError(f"{source}: {details}") from exc


def load_policy(path: Path) -> Policy:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PolicyError(f"cannot read policy file {path}: {exc}") from exc
    return parse_policy(text, str(path))


def policy_json(policy: Policy) -> str:
    return json.dumps(policy.model_dump(mode="json"), indent=2, sort_keys=True) + "\n"


def policy_from_store(store: ObjectStore, bucket: str, key: str | None) -> Policy:
    """The deployed policy: the object at `key` in `bucket`, or the shipped default if there is none."""
    if not key:
        return DEFAULT_POLICY
    try:
        body = store.open(store.describe(bucket, key))
    except ObjectGone:
        return DEFAULT_POLICY
    return parse_policy(body.read().decode("utf-8"), f"s3://{bucket}/{key}")
