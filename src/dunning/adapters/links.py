"""Download links to case packets that say truthfully how long they work.

A presigned URL is only as good as the credentials that signed it: S3 refuses it once they expire, whatever
the URL's own X-Amz-Expires says. A Lambda function's role credentials have no stated expiry (they are
rotated under it), so a link signed with them could die at any time. The function therefore assumes
PacketLinkSignerRole (s3:GetObject on the packets and kms:Decrypt through S3, nothing else) for the link's
lifetime, signs with that session, and states the earlier of the wanted expiry and the session's end. AWS
caps a session assumed from a function's role at one hour (role chaining), so links last at most an hour;
`dunning cases download` always works.

The URL is SigV4 (SigV2 URLs are refused for KMS-encrypted objects) on the bucket's regional,
virtual-hosted endpoint: https://<bucket>.s3.<region>.amazonaws.com/<key>?X-Amz-Algorithm=AWS4-HMAC-SHA256...
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import boto3
from botocore.config import Config

from dunning.ports import PacketLink

# Role chaining (a Lambda role assuming another role) limits the session to one hour; STS's minimum is 15 min.
MAX_SESSION_SECONDS = 3600
MIN_SESSION_SECONDS = 900
# Taken off the session's end: the link must stop before the credentials do, whatever the clocks' skew.
SAFETY = timedelta(minutes=1)
SESSION_NAME = "dunning-packet-link"


def regional_s3_client(session: Any, region: str) -> Any:
    """An S3 client that signs SigV4 URLs for https://<bucket>.s3.<region>.amazonaws.com/<key>."""
    return session.client(
        "s3",
        region_name=region,
        endpoint_url=f"https://s3.{region}.amazonaws.com",
        config=Config(signature_version="s3v4", s3={"addressing_style": "virtual"}),
    )


class AssumedRoleLinkSigner:
    """Signs each link with a fresh session of the signer role (see the module docstring)."""

    def __init__(
        self, sts: Any, role_arn: str, region: str, now: Callable[[], datetime] = lambda: datetime.now(UTC)
    ) -> None:
        self._sts = sts
        self._role_arn = role_arn
        self._region = region
        # The wall clock: botocore dates the signature (X-Amz-Date) with it, and STS the session's end.
        self._now = now

    def __call__(self, bucket: str, key: str, seconds: int) -> PacketLink:
        duration = max(MIN_SESSION_SECONDS, min(seconds, MAX_SESSION_SECONDS))
        credentials = self._sts.assume_role(
            RoleArn=self._role_arn, RoleSessionName=SESSION_NAME, DurationSeconds=duration
        )["Credentials"]
        expiration: datetime = credentials["Expiration"]
        if expiration.tzinfo is None:
            expiration = expiration.replace(tzinfo=UTC)
        lifetime = min(seconds, int((expiration - SAFETY - self._now()).total_seconds()))
        if lifetime < 1:
            raise RuntimeError("the signing session expires too soon to sign a link")
        session = boto3.session.Session(
            aws_access_key_id=credentials["AccessKeyId"],
            aws_secret_access_key=credentials["SecretAccessKey"],
            aws_session_token=credentials["SessionToken"],
            region_name=self._region,
        )
        url: str = regional_s3_client(session, self._region).generate_presigned_url(
            "get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=lifetime
        )
        return PacketLink(url, signed_at(url) + timedelta(seconds=lifetime))


def signed_at(url: str) -> datetime:
    """The instant a SigV4 presigned URL was signed (its X-Amz-Date): it expires X-Amz-Expires later."""
    (stamp,) = parse_qs(urlsplit(url).query)["X-Amz-Date"]
    return datetime.strptime(stamp, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
