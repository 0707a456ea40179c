"""What every Lambda handler wires up: settings read once from the environment, AWS clients, the ledger
and the policy. Built lazily on the first invocation of a container (never at import), then reused.

Deployed, a process is one function's container: one runtime per process. The embedded AWS runs every
function in one process, so it installs a provider that hands each function its own runtime (its own
environment from the template, its own boto3 session holding only its role's permissions)."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from functools import cache, cached_property
from typing import Any

import boto3

from dunning.adapters.ledger import Ledger
from dunning.adapters.mailer import NO_RETRIES, SesMailer
from dunning.adapters.overrides import TemplateOverrides
from dunning.adapters.policy_store import ActivePolicy
from dunning.adapters.storage import ObjectStore, S3Archive, S3Documents
from dunning.domain.clock import current_clock
from dunning.domain.policy import Policy
from dunning.ports import PacketLink, PacketLinkSigner
from dunning.runtime.settings import Settings
from dunning.services.legal import LegalDesk


@dataclass
class Runtime:
    settings: Settings
    session: boto3.session.Session = field(default_factory=boto3.session.Session)

    @cached_property
    def store(self) -> ObjectStore:
        return ObjectStore(self.session.client("s3"))

    @cached_property
    def ledger(self) -> Ledger:
        return Ledger(self.session.resource("dynamodb"), self.settings.table_name)

    @cached_property
    def active_policy(self) -> ActivePolicy:
        return ActivePolicy(self.store, self.settings.ingest_bucket, self.settings.active_policy_key)

    @property
    def policy(self) -> Policy:
        """The policy in force, re-read at most every few minutes (an upload takes effect within 5)."""
        return self.active_policy.current()

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
            presign=self._packet_link_signer(),
            legal_email=settings.legal_team_email or None,
            link_hours=settings.packet_link_expiry_hours,
        )

    def _packet_link_signer(self) -> PacketLinkSigner | None:
        settings = self.settings
        if settings.local_packet_links:
            return _local_link(settings.local_packet_links)
        if not settings.packet_link_signer_role_arn:
            return None  # the legal team's email then names the `dunning cases download` command only
        from dunning.adapters.links import AssumedRoleLinkSigner

        region = self.session.region_name or os.environ.get("AWS_REGION", "")
        return AssumedRoleLinkSigner(self.session.client("sts"), settings.packet_link_signer_role_arn, region)

    @cached_property
    def sfn(self) -> Any:
        return self.session.client("stepfunctions")

    @cached_property
    def sesv2(self) -> Any:
        # One attempt per call: botocore would otherwise resend a message whose answer was lost.
        return self.session.client("sesv2", config=NO_RETRIES)


def _local_link(base: str) -> PacketLinkSigner:
    """The simulator's links: the packet's file under OUT/packets/ (not a secret, nothing to expire)."""

    def link(bucket: str, key: str, seconds: int) -> PacketLink:
        return PacketLink(
            base + key.rsplit("/", 1)[-1], current_clock().now() + timedelta(seconds=seconds), False
        )

    return link


@cache
def _process_runtime() -> Runtime:
    return Runtime(Settings.from_env(os.environ))


_provider: Callable[[], Runtime] | None = None


def runtime() -> Runtime:
    """The calling function's runtime."""
    return _provider() if _provider is not None else _process_runtime()


def use_runtime_provider(provider: Callable[[], Runtime] | None) -> None:
    """Install (or, with None, remove) the embedded AWS's per-function runtimes; forgets every runtime."""
    global _provider
    _provider = provider
    _process_runtime.cache_clear()
