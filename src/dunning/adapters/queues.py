"""The daily scan's queue of pages (SQS), as services.scan sees it (ports.ScanPages)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

# SendMessageBatch takes at most this many messages.
SQS_BATCH = 10


class PagesNotQueued(RuntimeError):
    """SQS refused some pages of a batch: the scan's invocation fails, and the schedule retries it."""


class SqsScanPages:
    def __init__(self, sqs: Any, queue_url: str) -> None:
        self._sqs = sqs
        self._url = queue_url

    def send(self, page: Mapping[str, Any]) -> None:
        self._sqs.send_message(QueueUrl=self._url, MessageBody=_body(page))

    def send_all(self, pages: Sequence[Mapping[str, Any]]) -> None:
        for start in range(0, len(pages), SQS_BATCH):
            batch = pages[start : start + SQS_BATCH]
            entries = [{"Id": str(number), "MessageBody": _body(page)} for number, page in enumerate(batch)]
            answer = self._sqs.send_message_batch(QueueUrl=self._url, Entries=entries)
            if failed := answer.get("Failed"):
                reasons = ", ".join(sorted({str(entry.get("Code", "")) for entry in failed}))
                raise PagesNotQueued(f"{len(failed)} of {len(batch)} scan pages not queued: {reasons}")


def _body(page: Mapping[str, Any]) -> str:
    return json.dumps(dict(page), sort_keys=True)
