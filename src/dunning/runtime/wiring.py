"""What every Lambda handler wires up: settings read once from the environment, AWS clients, the ledger
and the policy. Built lazily on the first invocation of a container (never at import), then reused.

Deployed, a process is one function's container: one runtime per process. The embedded AWS runs every
function in one process, so it installs a provider that hands each function its own runtime (its own
environment from the template, its own boto3 session holding only its role's permissions).

Each adapter is imported where the runtime first builds it, not at the top: every function imports this
module, and a function pays at its cold start only for the parts it uses (the scan never loads the mailer
and its MIME code, only the legal desk's callers load the legal module; issue 12).
tests/unit/test_handler_imports.py holds each handler to what it may import."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cache, cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import boto3

from dunning.domain.clock import current_clock
from dunning.ports import Books, PacketLink
from dunning.runtime.settings import (
    BucketSettings,
    IngestSettings,
    LadderSettings,
    LegalSettings,
    MailSettings,
    ScanSettings,
    SendNoticeSettings,
    Settings,
    WorkflowSettings,
)

if TYPE_CHECKING:
    from dunning.adapters.digest_reads import DigestReads
    from dunning.adapters.ledger import Ledger
    from dunning.adapters.overrides import TemplateOverrides
    from dunning.adapters.policy_store import ActivePolicy
    from dunning.adapters.storage import ObjectStore
    from dunning.domain.policy import Policy
    from dunning.ingest.service import Ingestor
    from dunning.ports import (
        Archive,
        Documents,
        Executions,
        Mailer,
        Pacer,
        PacketLinkSigner,
        ScanPages,
        Workflows,
    )
    from dunning.services.legal import LegalDesk

SettingsT = TypeVar("SettingsT", bound=Settings)


@dataclass
class Runtime(Generic[SettingsT]):
    # The function's own settings model (runtime.settings). A part only some functions use asks for the model
    # it needs (`Settings.needs`): called from a function without it, it fails naming the missing variables.
    settings: SettingsT
    session: boto3.session.Session = field(default_factory=boto3.session.Session)

    @cached_property
    def store(self) -> ObjectStore:
        from dunning.adapters.storage import ObjectStore

        return ObjectStore(self.session.client("s3"))

    @cached_property
    def ledger(self) -> Ledger:
        from dunning.adapters.ledger import Ledger

        return Ledger(self.session.resource("dynamodb"), self.settings.table_name)

    @cached_property
    def books(self) -> Books:
        return ledger_books(self.ledger)

    @cached_property
    def active_policy(self) -> ActivePolicy:
        from dunning.adapters.policy_store import ActivePolicy

        settings = self.settings.needs(BucketSettings, "the policy in force")
        return ActivePolicy(self.store, settings.ingest_bucket, settings.active_policy_key)

    @property
    def policy(self) -> Policy:
        """The policy in force, re-read at most every few minutes (an upload takes effect within 5)."""
        policy = self.active_policy.current()
        # --- one source for the scan time (runtime.settings.LadderSettings): a function that times the ladder
        # gets the stack's ScanSchedule as the policy's scan_time; a policy file's own is not used.
        # The same for the send spread (SendSpreadMinutes).
        if isinstance(self.settings, LadderSettings):
            stack = {
                "scan_time": self.settings.scan_time,
                "send_spread_minutes": self.settings.send_spread_minutes,
            }
            if any(getattr(policy, name) != value for name, value in stack.items()):
                policy = policy.model_copy(update=stack)
        return policy

    @cached_property
    def template_overrides(self) -> TemplateOverrides:
        from dunning.adapters.overrides import TemplateOverrides

        bucket = self.settings.needs(BucketSettings, "template overrides").ingest_bucket
        return TemplateOverrides(self.store, bucket, current_clock())

    @property
    def mailer(self) -> Mailer:
        from dunning.adapters.mailer import SesMailer

        # A light wrapper, made for each use (the SES client under it is the container's).
        return SesMailer(self.sesv2, self.settings.needs(MailSettings, "sending email").ses_configuration_set)

    @cached_property
    def archive(self) -> Archive:
        """Every message exactly as SES got it, under notices/ in the ingest bucket."""
        from dunning.adapters.storage import S3Archive

        return S3Archive(self.store, self.settings.needs(BucketSettings, "the archive").ingest_bucket)

    @cached_property
    def documents(self) -> Documents:
        from dunning.adapters.storage import S3Documents

        return S3Documents(self.store, self.ledger)

    @cached_property
    def pacer(self) -> Pacer:
        """The SES sending rate shared by every send (SesMaxSendRate)."""
        from dunning.adapters.pacing import DynamoPacer

        settings = self.settings.needs(SendNoticeSettings, "pacing the sends")
        return DynamoPacer(self.ledger, settings.ses_max_send_rate)

    @cached_property
    def scan_pages(self) -> ScanPages:
        """The daily scan's queue of pages."""
        from dunning.adapters.queues import SqsScanPages

        settings = self.settings.needs(ScanSettings, "the daily scan's pages")
        return SqsScanPages(self.session.client("sqs"), settings.scan_queue_url)

    @cached_property
    def workflows(self) -> Workflows:
        """The collections state machine's executions (the scan starts them)."""
        from dunning.adapters.stepfunctions import StepFunctions

        settings = self.settings.needs(WorkflowSettings, "starting executions")
        return StepFunctions(self.sfn, settings.state_machine_arn)

    @cached_property
    def executions(self) -> Executions:
        from dunning.adapters.stepfunctions import Continuations

        return Continuations(self.sfn)

    def template_dirs(self) -> list[Path]:
        """Where notice templates are looked up: the business's uploaded overrides first, then ours."""
        from dunning.notices.render import shipped_template_dir

        return [d for d in (self.template_overrides.directory(), shipped_template_dir()) if d is not None]

    def legal_desk(self) -> LegalDesk:
        """The legal hand-off's collaborators (the functions whose settings are LegalSettings)."""
        from dunning.services.legal import LegalDesk

        settings = self.settings.needs(LegalSettings, "the legal desk")
        return LegalDesk(
            books=self.books,
            store=self.store,
            ingest_bucket=settings.ingest_bucket,
            legal_bucket=settings.legal_bucket,
            archive=self.archive,
            documents=self.documents,
            mailer=self.mailer,
            policy=self.policy,
            presign=self._packet_link_signer(),
            legal_email=settings.legal_team_email or None,
            link_hours=settings.packet_link_expiry_hours,
        )

    def ingestor(self) -> Ingestor:
        """The ingest of uploads; payments reaching an account with the legal team update its case."""
        # Imported here: only the ingest function loads the upload formats.
        from dunning.adapters.ingest_ledger import DynamoIngestLedger
        from dunning.ingest.service import Ingestor

        settings = self.settings.needs(IngestSettings, "the ingest")

        def after_payments(accounts: set[str], at: datetime) -> None:
            # The legal desk (its module, an STS client for the packet links) for an upload of payments only,
            # not for every upload the function ingests.
            from dunning.services.legal import payments_received

            payments_received(self.legal_desk(), accounts, at)

        return Ingestor(
            DynamoIngestLedger(self.ledger), self.store, self.policy, settings.rejected_prefix, after_payments
        )

    def _packet_link_signer(self) -> PacketLinkSigner | None:
        settings = self.settings.needs(LegalSettings, "packet links")
        if settings.local_packet_links:
            return _local_link(settings.local_packet_links)
        if not settings.packet_link_signer_role_arn:
            return None  # the legal team's email then names the `dunning cases download` command only
        from dunning.adapters.links import AssumedRoleLinkSigner

        region = self.session.region_name or os.environ.get("AWS_REGION", "")
        return AssumedRoleLinkSigner(self.session.client("sts"), settings.packet_link_signer_role_arn, region)

    def digest_reads(self) -> DigestReads:
        """What the daily digest reads, by keys (a new reader each run: it holds the accounts' items)."""
        from dunning.adapters.digest_reads import DigestReads
        from dunning.services.digest import DIGEST_ACCOUNT

        return DigestReads(self.ledger, DIGEST_ACCOUNT)

    @cached_property
    def sfn(self) -> Any:
        return self.session.client("stepfunctions")

    @cached_property
    def sesv2(self) -> Any:
        from dunning.adapters.mailer import NO_RETRIES

        # One attempt per call: botocore would otherwise resend a message whose answer was lost.
        return self.session.client("sesv2", config=NO_RETRIES)


def ledger_books(ledger: Ledger) -> Books:
    """The services' records, all in the ledger table."""
    from dunning.adapters.cases import DynamoCases
    from dunning.adapters.ladders import DynamoContactLog, DynamoLadders
    from dunning.adapters.metrics import PowertoolsCounter
    from dunning.adapters.suppressions import DynamoSuppressions

    return Books(
        ladders=DynamoLadders(ledger),
        log=DynamoContactLog(ledger),
        cases=DynamoCases(ledger),
        suppressions=DynamoSuppressions(ledger),
        counter=PowertoolsCounter(),
    )


def _local_link(base: str) -> PacketLinkSigner:
    """The simulator's links: the packet's file under OUT/packets/ (not a secret, nothing to expire)."""

    def link(bucket: str, key: str, seconds: int) -> PacketLink:
        return PacketLink(
            base + key.rsplit("/", 1)[-1], current_clock().now() + timedelta(seconds=seconds), False
        )

    return link


@cache
def _process_runtime(model: type[Settings]) -> Runtime[Any]:
    """Deployed: the process is one function's container, its settings read once from its environment."""
    return Runtime(model.from_env(os.environ))


_provider: Callable[[type[Settings]], Runtime[Any]] | None = None


def runtime(model: type[SettingsT]) -> Runtime[SettingsT]:
    """The calling function's runtime, its settings read as `model` (the function's, runtime.settings)."""
    env = _provider(model) if _provider is not None else _process_runtime(model)
    env.settings.needs(model, "this function")
    return env


def use_runtime_provider(provider: Callable[[type[Settings]], Runtime[Any]] | None) -> None:
    """Install (or, with None, remove) the embedded AWS's per-function runtimes; forgets every runtime."""
    global _provider
    _provider = provider
    _process_runtime.cache_clear()
