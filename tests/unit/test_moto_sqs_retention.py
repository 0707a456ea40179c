"""The embedded AWS's SQS receive (dunning.local.embedded_sqs): moto's retention check answers as before
(a message within the queue's retention period is handed out, one past it is not), and a receive no longer
builds the queue's attributes for every message it hands out."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import boto3
import pytest
from moto import mock_aws

from dunning.local import moto_internals
from dunning.local.embedded_sqs import retention_read_directly

REGION = "eu-west-1"
Patch = Callable[[], AbstractContextManager[None]]


def received(patch: Patch, age_seconds: int, retention: int = 60) -> list[str]:
    """What a receive hands out of a queue keeping messages `retention` seconds, sent `age_seconds` ago."""
    with mock_aws(), patch():
        sqs = boto3.client("sqs", region_name=REGION)
        url = sqs.create_queue(QueueName="pages", Attributes={"MessageRetentionPeriod": str(retention)})[
            "QueueUrl"
        ]
        sqs.send_message_batch(
            QueueUrl=url, Entries=[{"Id": str(n), "MessageBody": f"page {n}"} for n in range(3)]
        )
        queue = moto_internals.SQS_GET_QUEUE.get()(_backend(), "pages")
        for message in queue._messages:
            message.sent_timestamp -= age_seconds * 1000
        answer = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)
        return sorted(message["Body"] for message in answer.get("Messages", []))


def _backend() -> Any:
    from moto.sqs.models import sqs_backends

    return sqs_backends["123456789012"][REGION]


@pytest.mark.parametrize("age", [0, 30, 59, 61, 3600])
def test_the_retention_check_answers_as_moto_does(age: int) -> None:
    assert received(retention_read_directly, age) == received(nullcontext, age)


def test_a_message_past_the_retention_period_is_not_handed_out() -> None:
    assert received(retention_read_directly, 0) == ["page 0", "page 1", "page 2"]
    assert received(retention_read_directly, 120) == []


def test_a_receive_no_longer_builds_the_queue_attributes_per_message(monkeypatch: pytest.MonkeyPatch) -> None:
    from moto.sqs.models import Queue

    built: list[str] = []
    attributes = Queue.attributes

    def counted(self: Any) -> Any:
        built.append(self.name)
        return attributes.fget(self)  # type: ignore[attr-defined]

    monkeypatch.setattr(Queue, "attributes", property(counted))
    received(nullcontext, 0)
    by_moto = len(built)
    built.clear()
    received(retention_read_directly, 0)
    # moto builds them three times for each of the three messages handed out; the rest (creating the queue,
    # sending) is the same both ways.
    assert by_moto - len(built) == 9
