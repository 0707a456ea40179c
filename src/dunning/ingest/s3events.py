"""Which uploads an incoming event announces: S3 event notifications or S3 events through EventBridge."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import unquote_plus

from aws_lambda_powertools.utilities.parser.models import S3EventNotificationEventBridgeModel, S3Model
from pydantic import ValidationError


class NotAnUploadEvent(ValueError):
    """The Lambda was invoked with something that is not an S3 object-created event."""


@dataclass(frozen=True)
class Upload:
    bucket: str
    # S3 notifications URL-encode the key; EventBridge is not consistent about it, so try both spellings.
    key_candidates: tuple[str, ...]
    version_id: str | None
    event_time: datetime
    event_id: str


def uploads_in(event: dict[str, Any]) -> list[Upload]:
    try:
        if "detail-type" in event:
            bridge = S3EventNotificationEventBridgeModel.model_validate(event)
            detail = bridge.detail
            raw_key = detail.object.key
            keys = tuple(dict.fromkeys((raw_key, unquote_plus(raw_key))))
            return [Upload(detail.bucket.name, keys, detail.object.version_id, bridge.time, bridge.id)]
        notification = S3Model.model_validate(event)
    except ValidationError as exc:
        raise NotAnUploadEvent(f"not an S3 object-created event: {exc.error_count()} problem(s)") from exc
    return [
        Upload(
            record.s3.bucket.name,
            (unquote_plus(record.s3.object.key),),
            record.s3.object.versionId,
            record.eventTime,
            record.responseElements.x_amz_request_id,
        )
        for record in notification.Records
        if record.eventName.startswith("ObjectCreated") and record.s3.object is not None
    ]
