"""SQS in the embedded AWS: moto's ReceiveMessage, with its retention check made cheap.

For every message it hands out, moto checks the queue's retention period by building all of the queue's
attributes three times over, each counting every message in the queue (visible, delayed, in flight): a
receive of ten pages cost a few hundred such counts, an eighth of a simulated day. The check itself reads
one number, the queue's MessageRetentionPeriod; `retention_read_directly` reads it from the queue and
compares as moto does. Every internal used is listed in `dunning.local.moto_internals`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from dunning.local import moto_internals as internals


def _retention_read_directly(original: Callable[..., Any]) -> Callable[..., Any]:
    del original  # replaced whole: what it computed is below, without building the queue's attributes

    def is_message_valid_based_on_retention_period(self: Any, queue_name: str, message: Any) -> bool:
        retention_period = self.get_queue(queue_name).message_retention_period
        return bool(retention_period + message.sent_timestamp / 1000 > internals.SQS_UNIX_TIME.get()())

    return is_message_valid_based_on_retention_period


@contextmanager
def retention_read_directly() -> Iterator[None]:
    """Inside the block, moto's receive reads a queue's retention period without counting its messages."""
    internal = internals.SQS_RETENTION_CHECK
    with internals.patched((internal, _retention_read_directly(internal.get()))):
        yield
