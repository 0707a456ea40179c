"""Driving the embedded system through simulated days, the way the deployed schedule does.

Each simulated day: uploads dated that day are put into the bucket at the start of the day (business
time zone), before anything is sent; the daily digest fires at the hourly schedule's first run in the policy's
sending window (services.digest); the daily scan fires at the time of the template's ScanSchedule
(`embedded_aws.scan_time`: the deployed schedule, whose time the ladder uses too; a policy's own `scan_time`
is not used), in the business time zone; executions wake at their Wait timestamps in between. Used by
`dunning simulate` and by the tests.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from dunning.domain.policy import Policy
from dunning.local.embedded_aws import EmbeddedAws
from dunning.services.digest import digest_time


@dataclass(frozen=True)
class Upload:
    kind: str  # invoices | payments | actions | documents
    name: str
    body: bytes


@dataclass
class Simulation:
    aws: EmbeddedAws
    policy: Policy
    uploads: dict[date, list[Upload]] = field(default_factory=lambda: defaultdict(list))
    import_results: list[dict[str, Any]] = field(default_factory=list)
    scans: list[dict[str, object]] = field(default_factory=list)
    digests: list[dict[str, object]] = field(default_factory=list)

    def at(self, day: date, clock: time = time(0)) -> datetime:
        """`day` at local `clock` in the business time zone, as a UTC instant."""
        return datetime.combine(day, clock, tzinfo=ZoneInfo(self.policy.business_timezone)).astimezone(UTC)

    def schedule(self, day: date, upload: Upload) -> None:
        self.uploads[day].append(upload)

    def run_until_day(self, day: date) -> None:
        """Everything before the first instant of `day`, and nothing at it: a Wait ending exactly at D 00:00
        (a customer far east of the business, whose window opens then) belongs to day D, after D's uploads."""
        self.aws.scheduler.run_until(self.at(day), inclusive=False)

    def run_day(self, day: date) -> None:
        start = self.at(day)
        self.run_until_day(day)
        for upload in self.uploads.pop(day, []):
            result = self.aws.upload(upload.kind, upload.name, upload.body, start)
            for summary in result["imports"]:
                # Read the reject report now: a later upload under the same name replaces or removes it.
                if summary["report_key"]:
                    report = self.aws.s3.get_object(Bucket=self.aws.bucket, Key=summary["report_key"])
                    summary["report"] = report["Body"].read().decode("utf-8")
            self.import_results.append(result)
        # The daily scan, and the digest's run of the day (the hourly schedule's first in the sending window,
        # services.digest.digest_time), in the order of their times.
        # By the policy in force in the bucket, as the deployed function decides (its time zone and window).
        policy = self.aws.policy_in_force()
        runs = [(self.at(day, self.aws.scan_time), 0)]
        if policy.collector is not None or not self.digests:
            # With a policy that names no collector the deployed function returns once it has read the
            # policy, reading and sending nothing more: after the first such run (which reads the policy as
            # the deployed one does, a missing one included) the runs are left out here. A simulated day
            # costs less; nothing a user sees changes.
            runs.append((digest_time(day, policy, self.aws.digest_minute).astimezone(UTC), 1))
        for at, kind in sorted(runs):
            self.aws.run_until(at)
            if kind == 0:
                self.scans.append(self.aws.scan())
            else:
                self.digests.append(self.aws.digest())

    def run(
        self,
        first: date,
        days: int,
        progress: Callable[[int, int], None] | None = None,
        day_ended: Callable[[date], None] | None = None,
    ) -> None:
        """Run `days` days from `first`; `day_ended(day)` is called once each day has run to its end."""
        for offset in range(days):
            day = first + timedelta(days=offset)
            self.run_day(day)
            if progress:
                progress(offset + 1, days)
            if day_ended:
                self.run_until_day(day + timedelta(days=1))
                day_ended(day)
        self.run_until_day(first + timedelta(days=days))
