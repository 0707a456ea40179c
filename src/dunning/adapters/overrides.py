"""A business's own notice templates: files under `templates/` in its bucket override the shipped ones.

The send function mirrors that prefix into a local directory (Lambda's /tmp), listed before the shipped
templates, so any single file a business provides wins and every other file falls back to ours. The
mirror is refreshed when it is older than a few minutes, so an edited template takes effect without a
redeploy.
"""

from __future__ import annotations

import re
import shutil
import tempfile
import uuid
from datetime import datetime, timedelta
from pathlib import Path

from dunning.adapters.storage import ObjectStore
from dunning.domain.clock import Clock

PREFIX = "templates/"
# <language>/<file>.j2, nothing else: no other directories, no way out of the mirror.
_SAFE_PATH = re.compile(r"^[a-z]{2,3}(_[A-Z]{2})?/[A-Za-z0-9_][A-Za-z0-9_.-]{0,80}\.j2$")
MAX_AGE = timedelta(minutes=5)


class TemplateOverrides:
    def __init__(self, store: ObjectStore, bucket: str, clock: Clock, root: Path | None = None) -> None:
        self._store = store
        self._bucket = bucket
        self._clock = clock
        self._root = root or Path(tempfile.gettempdir()) / "dunning-templates" / bucket
        self._synced_at: datetime | None = None
        self._present = False
        # Each sync mirrors into a new folder: the notices' Jinja environments are cached per folder, and a
        # template compiled from an earlier mirror (or from the shipped files) must never outlive it.
        self._mirror = self._root

    def directory(self) -> Path | None:
        """The mirrored override directory, or None when the business has no templates of its own."""
        now = self._clock.now()
        if self._synced_at is None or now - self._synced_at > MAX_AGE:
            self._present = self._sync()
            self._synced_at = now
        return self._mirror if self._present else None

    def _sync(self) -> bool:
        wanted = {
            key[len(PREFIX) :]: etag
            for key, etag in self._store.list(self._bucket, PREFIX)
            if _SAFE_PATH.match(key[len(PREFIX) :])
        }
        if self._mirror.exists():
            shutil.rmtree(self._mirror)
        self._mirror = self._root / uuid.uuid4().hex
        for relative in wanted:
            target = self._mirror / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            body = self._store.open(self._store.describe(self._bucket, PREFIX + relative)).read()
            target.write_bytes(body)
        return bool(wanted)
