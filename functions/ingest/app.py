"""Ingest Lambda: an upload under incoming/ in the ingest bucket -> the ledger, plus a reject report; the
policy uploaded to the stack's PolicyKey -> validated and put in force, or a reject report."""

from __future__ import annotations

import dataclasses
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from dunning.adapters.storage import ObjectGone, ObjectStore, StoredObject
from dunning.ingest.policy_upload import install_policy
from dunning.ingest.s3events import Upload, uploads_in
from dunning.ingest.service import ImportSummary
from dunning.runtime.settings import IngestSettings
from dunning.runtime.tracing import lambda_tracer
from dunning.runtime.wiring import runtime

logger = Logger()
tracer = lambda_tracer()
metrics = Metrics(namespace="Dunning")


def _locate(store: ObjectStore, upload: Upload) -> StoredObject | None:
    for key in upload.key_candidates:
        try:
            found = store.describe(upload.bucket, key, upload.version_id)
        except ObjectGone:
            continue
        # The event's time, not LastModified: a re-delivered event then writes the very same log entries.
        return dataclasses.replace(found, uploaded_at=upload.event_time)
    logger.warning("Upload no longer exists; nothing to import", extra={"keys": upload.key_candidates})
    return None


def _install_policy(store: ObjectStore, bucket: str, settings: IngestSettings) -> ImportSummary | None:
    """The business uploaded its policy: validate it and put it in force, or report why not (None: gone)."""
    return install_policy(
        store, bucket, settings.policy_key, settings.active_policy_key, settings.rejected_prefix
    )


def _record_metrics(summary: ImportSummary) -> None:
    for name in ("imported", "updated", "unchanged", "rejected", "skipped"):
        metrics.add_metric(name=f"{summary.kind}_{name}", unit=MetricUnit.Count, value=getattr(summary, name))


@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler
@metrics.log_metrics(raise_on_empty_metrics=False)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    env = runtime(IngestSettings)
    ingestor = env.ingestor()
    results = []
    for upload in uploads_in(event):
        logger.set_correlation_id(upload.event_id)
        if env.settings.policy_key in upload.key_candidates:
            installed = _install_policy(env.store, upload.bucket, env.settings)
            if installed is not None:
                _record_metrics(installed)
                results.append(dataclasses.asdict(installed))
            continue
        stored = _locate(env.store, upload)
        summary = ingestor.ingest(stored) if stored else None
        if summary is not None:
            _record_metrics(summary)
            results.append(dataclasses.asdict(summary))
    return {"imports": results}
