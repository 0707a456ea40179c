"""What every Lambda handler wires up: settings read once from the environment, AWS clients, the ledger
and the policy. Built lazily on the first invocation of a container (never at import), then reused."""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cache, cached_property
from typing import Any

import boto3

from dunning.clock import current_clock
from dunning.ledger import Ledger
from dunning.overrides import TemplateOverrides
from dunning.policy import Policy, policy_from_store
from dunning.settings import Settings
from dunning.storage import ObjectStore


@dataclass
class Runtime:
    settings: Settings

    @cached_property
    def store(self) -> ObjectStore:
        return ObjectStore(boto3.client("s3"))

    @cached_property
    def ledger(self) -> Ledger:
        return Ledger(boto3.resource("dynamodb"), self.settings.table_name)

    @cached_property
    def policy(self) -> Policy:
        return policy_from_store(self.store, self.settings.ingest_bucket, self.settings.policy_key)

    @cached_property
    def template_overrides(self) -> TemplateOverrides:
        return TemplateOverrides(self.store, self.settings.ingest_bucket, current_clock())

    @cached_property
    def sfn(self) -> Any:
        return boto3.client("stepfunctions")

    @cached_property
    def sesv2(self) -> Any:
        return boto3.client("sesv2")


@cache
def runtime() -> Runtime:
    return Runtime(Settings.from_env(os.environ))
