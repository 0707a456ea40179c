"""The daily scan's queue of pages (SQS), as services.scan sees it (ports.ScanPages)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any


class SqsScanPages:
    def __init__(self, sqs: Any, queue_url: str) -> None:
        self._sqs = sqs
        self._url = queue_url

    def send(self, page: Mapping[str, Any]) -> None:
        self._sqs.send_message(QueueUrl=self._url, MessageBody=json.dumps(dict(page), sort_keys=True))
