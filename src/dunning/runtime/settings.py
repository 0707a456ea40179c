"""Each function's settings, read once from its environment into a validated model.

infra/template.yaml gives each function its own environment, and each function has its own model
(`FUNCTION_SETTINGS`, by the function's folder under functions/) that requires exactly what the function
needs. `Settings` holds what every function has (the ledger); the models in between hold what several share
(the ingest bucket and the policy in force, the ladder's scan time, email, the legal desk, the state
machine). The runtime (wiring.py) works with any of them: a part of it only some functions use asks for
the model it needs (`Settings.needs`) and fails saying which variables the function lacks.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import time
from typing import Any, Self, TypeVar

from pydantic import BaseModel, ConfigDict, Field, field_validator

_S = TypeVar("_S", bound="Settings")

# --- the daily scan's time ----------------------------------------------------------------------------

# The stack's ScanSchedule (an EventBridge Scheduler expression, in the BusinessTimezone parameter) is the one
# source of the daily scan's time of day: the scan runs then, the ladder times its waits by it (the policy's
# own `scan_time` is not used) and the simulator scans then. Only one run a day at a fixed time has one.
_DAILY_CRON = re.compile(r"cron\((\d{1,2}) (\d{1,2}) (?:\* \* \?|\? \* \*) \*\)")


class UnsupportedSchedule(ValueError):
    """A ScanSchedule that is not one run a day at a fixed time, `cron(M H * * ? *)`."""


def daily_time(expression: str) -> time:
    """The time of day of a daily EventBridge Scheduler cron: `cron(M H * * ? *)` (or `cron(M H ? * * *)`)."""
    match = _DAILY_CRON.fullmatch(expression)
    if match is None:
        raise UnsupportedSchedule(
            f"ScanSchedule {expression!r}: the daily scan runs once a day at a fixed time, cron(M H * * ? *)"
        )
    minute, hour = int(match.group(1)), int(match.group(2))
    if minute > 59 or hour > 23:
        raise UnsupportedSchedule(f"ScanSchedule {expression!r}: not a time of day")
    return time(hour, minute)


# --- the models -----------------------------------------------------------------------------------------


class MissingSettings(RuntimeError):
    """A part of the runtime needs a variable the calling function's settings do not have."""


class Settings(BaseModel):
    """What every function has: the ledger."""

    # defer_build: a function validates its own model only; building every model's validator at import
    # would cost each cold start about 20 ms for models the function never uses (issue 12).
    model_config = ConfigDict(frozen=True, populate_by_name=True, extra="ignore", defer_build=True)

    table_name: str = Field(alias="LEDGER_TABLE", min_length=1)

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Self:
        return cls.model_validate(dict(environ))

    @classmethod
    def variables(cls) -> frozenset[str]:
        """The environment variables this model reads."""
        return frozenset(field.alias or name for name, field in cls.model_fields.items())

    @classmethod
    def required_variables(cls) -> frozenset[str]:
        """The environment variables this model cannot do without."""
        return frozenset(
            field.alias or name for name, field in cls.model_fields.items() if field.is_required()
        )

    def needs(self, model: type[_S], what: str) -> _S:
        """These settings as `model`, for `what` (a part of the runtime only some functions use)."""
        if isinstance(self, model):
            return self
        missing = ", ".join(sorted(model.required_variables() - type(self).variables()))
        raise MissingSettings(
            f"{what} needs {model.__name__} ({missing}); this function's settings are {type(self).__name__}"
        )


class BucketSettings(Settings):
    """A function that works in the ingest bucket: it reads the policy in force there (and more)."""

    ingest_bucket: str = Field(alias="INGEST_BUCKET", min_length=1)
    # The validated policy in force (written by the ingest function, read within 5 minutes).
    active_policy_key: str = Field(alias="ACTIVE_POLICY_KEY", min_length=1)


class LadderSettings(BucketSettings):
    """A function that times the ladder: at the daily scan's time of day, the stack's ScanSchedule (the
    runtime puts it in the policy it hands out, in place of the policy file's own `scan_time`)."""

    scan_time: time = Field(alias="SCAN_SCHEDULE")
    # The stack's SendSpreadMinutes: the runtime puts it in the policy, as it does the scan time.
    send_spread_minutes: int = Field(alias="SEND_SPREAD_MINUTES", ge=0, le=1440)

    @field_validator("scan_time", mode="before")
    @classmethod
    def _from_schedule(cls, value: Any) -> Any:
        return daily_time(value) if isinstance(value, str) else value


class MailSettings(Settings):
    """A function that sends email: through the notices' configuration set (bounces come back through it)."""

    ses_configuration_set: str = Field(alias="SES_CONFIGURATION_SET", min_length=1)


class LegalSettings(BucketSettings, MailSettings):
    """A function that works the legal desk: case packets in the legal bucket, the legal team's emails."""

    legal_bucket: str = Field(alias="LEGAL_BUCKET", min_length=1)
    # Absent when the stack's LegalTeamEmail parameter is empty: no email to the legal team.
    legal_team_email: str | None = Field(default=None, alias="LEGAL_TEAM_EMAIL")
    packet_link_expiry_hours: int = Field(ge=1, le=168, alias="PACKET_LINK_EXPIRY_HOURS")
    # The role whose short session signs the packet links (its end is the links' latest expiry).
    packet_link_signer_role_arn: str = Field(alias="PACKET_LINK_SIGNER_ROLE_ARN", min_length=1)
    # Local runs only: links to packets become "<base><case_id>.zip" instead of presigned S3 URLs.
    local_packet_links: str | None = Field(default=None, alias="LOCAL_PACKET_LINKS")


class WorkflowSettings(Settings):
    """A function that starts collections executions: on the state machine's `live` alias."""

    state_machine_arn: str = Field(alias="STATE_MACHINE_ARN", min_length=1)


# --- one model per function -------------------------------------------------------------------------------


class ScanSettings(LadderSettings, WorkflowSettings):
    """functions/scan_overdue: the wake index up to the next scan, the scan queue's pages, one execution per
    ladder."""

    scan_queue_url: str = Field(alias="SCAN_QUEUE_URL", min_length=1)
    # The function that takes a waking ladder's step (send_notice's alias: services.stepping).
    step_function_arn: str = Field(alias="STEP_FUNCTION_ARN", min_length=1)


class EscalateSettings(LadderSettings, LegalSettings, WorkflowSettings):
    """functions/escalate: the legal hand-off's step, a failure recorded, successor executions."""


class SendNoticeSettings(LadderSettings, MailSettings, WorkflowSettings):
    """functions/send_notice: a ladder's step (decides, sends, starts a successor execution); renders with
    the bucket's template overrides."""

    # The stack's SesMaxSendRate: sends per second across all of them (the pacer's bucket).
    ses_max_send_rate: int = Field(alias="SES_MAX_SEND_RATE", ge=1)


class IngestSettings(LegalSettings):
    """functions/ingest: uploads to the ledger; the uploaded policy put in force; payments on cases."""

    # Where the business uploads its policy (the PolicyKey parameter).
    policy_key: str = Field(alias="POLICY_KEY", min_length=1)
    rejected_prefix: str = Field(alias="REJECTED_PREFIX", min_length=1)


class SesEventsSettings(Settings):
    """functions/ses_events: bounces and complaints into the ledger's suppression list and contact log."""


class DigestSettings(BucketSettings, MailSettings):
    """functions/digest: each task owner's daily digest email (services.digest), from the policy in force."""


FUNCTION_SETTINGS: dict[str, type[Settings]] = {
    "scan_overdue": ScanSettings,
    "escalate": EscalateSettings,
    "send_notice": SendNoticeSettings,
    "ingest": IngestSettings,
    "ses_events": SesEventsSettings,
    "digest": DigestSettings,
}
