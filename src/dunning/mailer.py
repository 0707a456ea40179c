"""Amazon SES (v2) as the Mailer: raw MIME in, SES message id out, errors sorted into retry or give up."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from dunning.notices.mime import UnsendableAddress, ses_address
from dunning.sending import SendRejected, SendThrottled
from dunning.suppression import ACCOUNT_TAG, account_tag

# Worth retrying: SES is busy or briefly unavailable; nothing was accepted.
_TRANSIENT = {
    "TooManyRequestsException",
    "Throttling",
    "ThrottlingException",
    "LimitExceededException",
    "ServiceUnavailable",
    "InternalFailure",
    "InternalServerError",
    "SendingPausedException",
}


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
            code = exc.response["Error"]["Code"]
            if code in _TRANSIENT:
                raise SendThrottled(code) from exc
            raise SendRejected(f"{code}: {exc.response['Error'].get('Message', '')}") from exc
        except BotoCoreError as exc:
            # The request may not have reached SES; the caller's reservation makes a retry safe.
            raise SendThrottled(type(exc).__name__) from exc
        message_id: str = response["MessageId"]
        return message_id
