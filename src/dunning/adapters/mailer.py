"""Amazon SES (v2) as the Mailer: raw MIME in, SES message id out, every error sorted by what it proves.

Exactly once depends on reading an error for what it says about the message:
- proof that SES accepted nothing (a throttling or paused-sending answer, or a connection that never
  opened): `SendThrottled`, and the caller may send again later;
- proof that SES refused the message (any other 4xx answer): `SendRejected`;
- no proof either way (the request went out and the answer was lost: a read timeout, a reset connection,
  an HTTP 5xx): `SendUnconfirmed`. SES may have accepted it, so nothing may ever send it again.

botocore's own retries would resend on exactly those ambiguous errors, so the SES client must be made with
`NO_RETRIES` (the state machine retries what is safe to retry, through the send's reservation).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    ParamValidationError,
)

from dunning.notices.mime import UnsendableAddress, ses_address
from dunning.ports import ACCOUNT_TAG, SendRejected, SendThrottled, SendUnconfirmed, account_tag

# The SES client's configuration: one attempt per call (see the module docstring).
NO_RETRIES = Config(retries={"total_max_attempts": 1, "mode": "standard"})

# SES answered that it is busy or paused: it took nothing, and the same message may be sent later.
_NOT_ACCEPTED_RETRY_LATER = {
    "TooManyRequestsException",
    "Throttling",
    "ThrottlingException",
    "LimitExceededException",
    "SendingPausedException",
    "AccountSendingPausedException",
    "ConfigurationSetSendingPausedException",
}
# Raised before a single byte reached SES: the request never went out.
_NEVER_SENT = (ConnectTimeoutError, EndpointConnectionError, NoCredentialsError, ParamValidationError)


class SesMailer:
    def __init__(self, sesv2: Any, configuration_set: str | None = None) -> None:
        self._ses = sesv2
        self._configuration_set = configuration_set

    def send(self, sender: str, to: Sequence[str], raw: bytes, account_id: str | None = None) -> str:
        # SES takes only 7-bit ASCII addresses: punycode domains, RFC 2047-encoded display names (the raw
        # message's headers are built the same way by notices.mime).
        try:
            source, destination = ses_address(sender), [ses_address(address) for address in to]
        except UnsendableAddress as exc:
            raise SendRejected(f"unsendable address: {exc}") from exc
        request: dict[str, Any] = {
            "FromEmailAddress": source,
            "Destination": {"ToAddresses": destination},
            "Content": {"Raw": {"Data": raw}},
        }
        tag = account_tag(account_id) if account_id else None
        if tag:
            # Bounce and complaint events carry the message's tags: this is how they find the account.
            request["EmailTags"] = [{"Name": ACCOUNT_TAG, "Value": tag}]
        if self._configuration_set:
            request["ConfigurationSetName"] = self._configuration_set
        try:
            response = self._ses.send_email(**request)
        except ClientError as exc:
            raise classify(exc) from exc
        except _NEVER_SENT as exc:
            raise SendThrottled(type(exc).__name__) from exc
        except BotoCoreError as exc:
            # Read timeouts, resets, broken responses: the request went out, the answer did not come back.
            raise SendUnconfirmed(type(exc).__name__) from exc
        message_id: str = response["MessageId"]
        return message_id


def classify(exc: ClientError) -> SendThrottled | SendRejected | SendUnconfirmed:
    """What an SES error response proves about the message (see the module docstring)."""
    error = exc.response.get("Error", {})
    code = str(error.get("Code", ""))
    status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
    if code in _NOT_ACCEPTED_RETRY_LATER:
        return SendThrottled(code)
    if status >= 500 or code in {"InternalFailure", "InternalServerError", "ServiceUnavailable"}:
        return SendUnconfirmed(f"{code} (HTTP {status or '5xx'})")
    return SendRejected(f"{code}: {error.get('Message', '')}")
