from __future__ import annotations

import pytest

from dunning.ingest.s3events import NotAnUploadEvent, uploads_in
from tests.support.files import s3_notification


def test_s3_notification_keys_are_url_decoded() -> None:
    event = s3_notification("b", "incoming/invoices/March+2027+%28final%29.csv")
    (upload,) = uploads_in(event)
    assert upload.key_candidates == ("incoming/invoices/March 2027 (final).csv",)
    assert upload.event_time.isoformat() == "2027-01-15T08:00:00+00:00"


def test_eventbridge_keys_are_tried_as_sent_then_decoded() -> None:
    event = {
        "version": "0",
        "id": "E1",
        "detail-type": "Object Created",
        "source": "aws.s3",
        "account": "1",
        "time": "2027-01-15T08:00:00Z",
        "region": "eu-west-1",
        "resources": [],
        "detail": {
            "version": "0",
            "bucket": {"name": "b"},
            "object": {"key": "incoming/invoices/a+b.csv", "size": 1, "etag": "e"},
            "request-id": "r",
            "requester": "1",
            "source-ip-address": "1.2.3.4",
            "reason": "PutObject",
        },
    }
    (upload,) = uploads_in(event)
    assert upload.key_candidates == ("incoming/invoices/a+b.csv", "incoming/invoices/a b.csv")


def test_anything_else_is_refused_with_a_clear_error() -> None:
    with pytest.raises(NotAnUploadEvent):
        uploads_in({"hello": "world"})
