"""What every Lambda handler wires up: settings read once from the environment, AWS clients, the ledger
and the policy. Built lazily on the first invocation of a container (never at import), then reused."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache, cached_property
from typing import Any

import boto3

from dunning.clock import current_clock
from dunning.ledger import Ledger
from dunning.legal import LegalDesk
from dunning.mailer import SesMailer
from dunning.overrides import TemplateOverrides
from dunning.policy import Policy, policy_from_store
from dunning.settings import Settings
from dunning.storage import ObjectStore, S3Archive, S3Documents


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

    def legal_desk(self) -> LegalDesk | None:
        """The legal hand-off's collaborators; None where the stack has no legal bucket configured."""
        settings = self.settings
        if not settings.legal_bucket:
            return None
        return LegalDesk(
            ledger=self.ledger,
            store=self.store,
            ingest_bucket=settings.ingest_bucket,
            legal_bucket=settings.legal_bucket,
            archive=S3Archive(self.store, settings.ingest_bucket),
            documents=S3Documents(self.store, self.ledger),
            mailer=SesMailer(self.sesv2, settings.ses_configuration_set),
            policy=self.policy,
            presign=_local_link(settings.local_packet_links)
            if settings.local_packet_links
            else self.store.presign_get,
            legal_email=settings.legal_team_email or None,
            link_hours=settings.packet_link_expiry_hours,
        )

    @cached_property
    def sfn(self) -> Any:
        return boto3.client("stepfunctions")

    @cached_property
    def sesv2(self) -> Any:
        return boto3.client("sesv2")


def _local_link(base: str) -> Callable[[str, str, int], str]:
    def link(bucket: str, key: str, seconds: int) -> str:
        return base + key.rsplit("/", 1)[-1]

    return link


@cache
def runtime() -> Runtime:
    return Runtime(Settings.from_env(os.environ))
