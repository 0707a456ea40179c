"""The policy in force, read by every function from the stack's bucket (re-read when it is stale)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from dunning.adapters.storage import ObjectGone, ObjectStore
from dunning.domain.clock import Clock, current_clock
from dunning.domain.policy import DEFAULT_POLICY, Policy, PolicyError, parse_policy

logger = logging.getLogger(__name__)

# Where the ingest function keeps the policy in force (validated, canonical JSON): the key every function
# reads. The business uploads to the stack's PolicyKey; only a policy that validates reaches this key.
ACTIVE_POLICY_KEY = "config/active-policy.json"
# How long a function uses the policy it read before asking again (project clock): with the ingest's own
# few seconds, an uploaded policy is in force everywhere within 5 minutes.
POLICY_MAX_AGE = timedelta(minutes=4)


class ActivePolicy:
    """The policy in force, as a function sees it: the object at the active key, re-read when it is older
    than POLICY_MAX_AGE on the project clock (an unchanged object costs one 304). No object: the defaults.
    An object that cannot be used (written by hand past the ingest's validation) never breaks the
    function: the policy read before stays in force (the defaults if none), and the problem is logged."""

    def __init__(
        self,
        store: ObjectStore,
        bucket: str,
        key: str | None,
        clock: Callable[[], Clock] = current_clock,
        max_age: timedelta = POLICY_MAX_AGE,
    ) -> None:
        self._store = store
        self._bucket = bucket
        self._key = key
        self._clock = clock
        self._max_age = max_age
        self._policy = DEFAULT_POLICY
        self._etag: str | None = None
        self._read_at: datetime | None = None

    def current(self) -> Policy:
        now = self._clock().now()
        if self._read_at is None or now - self._read_at >= self._max_age:
            self._policy = self._refresh()
            self._read_at = now
        return self._policy

    def _refresh(self) -> Policy:
        if not self._key:
            return DEFAULT_POLICY
        try:
            changed = self._store.read_if_changed(self._bucket, self._key, self._etag)
        except ObjectGone:
            self._etag = None
            return DEFAULT_POLICY
        if changed is None:
            return self._policy
        body, self._etag = changed
        try:
            return parse_policy(body.decode("utf-8"), f"s3://{self._bucket}/{self._key}")
        except (PolicyError, UnicodeDecodeError) as exc:
            logger.error("The active policy cannot be used; the policy in force stays: %s", str(exc)[:500])
            return self._policy
