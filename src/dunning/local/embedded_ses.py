"""The embedded SES: moto's SES v2, made to refuse what the real SES refuses.

moto accepts almost any SendEmail request. Real SES does not, and a notice it refuses must show up in the
simulator as it would deployed (`notice_failed`), not as a notice sent. While `embedded_ses()` is active,
every SES v2 SendEmail reaching moto (from any client or session in the process) is checked first by
`refusal()`; a request SES would refuse gets SES's error response (code, HTTP status, message), which
botocore turns into the same `ClientError` the deployed functions get.

What is refused (SES v2 SendEmail; https://docs.aws.amazon.com/ses/latest/APIReference-V2/API_SendEmail.html):
- no ConfigurationSetName (stricter than SES, which would send without one: the deployed functions always
  send with the stack's NoticeConfigurationSet, whose bounce events are how a bounce is ever noticed, so
  a send without it is a bug the simulator must show) -> BadRequestException;
- a ConfigurationSetName that does not exist -> NotFoundException (404);
- a raw message over 40 MB after base64 encoding (SES v2's limit) -> BadRequestException;
- an address in FromEmailAddress, Destination (To/Cc/Bcc) or ReplyToAddresses, or in the raw message's
  From/To/Cc/Bcc/Reply-To headers, that is not 7-bit ASCII: SES has no SMTPUTF8, so an IDN domain must be
  punycode and a local part can only be ASCII -> BadRequestException (API fields) / MessageRejected
  (raw headers); a display name with non-ASCII characters not RFC 2047-encoded is refused the same way;
- a From address that no verified identity (the exact address, or its domain) covers -> MessageRejected
  "Email address is not verified. The following identities failed the check in region ...";
- in sandbox mode, every recipient that is not itself verified -> the same MessageRejected;
- optionally (`max_send_rate`), a send over the account's maximum send rate, on the simulated clock ->
  TooManyRequestsException (HTTP 429) "Maximum sending rate exceeded.", what SES v2 answers then (SES v1
  calls it Throttling); nothing is sent, and the mailer reads it as SendThrottled.

The error codes are SES v2's; the messages follow the wording SES uses where it is known (the
"not verified" one verbatim; the address ones after SES v1's "Domain contains illegal character"), with
the offending field added so a person can see what to fix.
"""

from __future__ import annotations

import base64
import binascii
import email.parser
import email.policy
import email.utils
import json
import threading
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from typing import Any

from dunning.local import moto_internals

# SES v2: "Maximum message size (including attachments): 40 MB per message (after base64 encoding)".
MAX_RAW_MESSAGE_BYTES = 40 * 1024 * 1024
# The name the embedded stack gives the template's NoticeConfigurationSet.
NOTICE_CONFIGURATION_SET = "dunning-notices"
_ADDRESS_HEADERS = ("From", "To", "Cc", "Bcc", "Reply-To")
_DESTINATION_KEYS = ("ToAddresses", "CcAddresses", "BccAddresses")
# SES v2's answer to a send over the maximum send rate, as /v2/email/outbound-emails gives it (the guide names
# ThrottlingException; the mailer reads both as SendThrottled).
MAX_SEND_RATE_EXCEEDED = ("TooManyRequestsException", "Maximum sending rate exceeded.", 429)


@dataclass(frozen=True)
class Refusal:
    """An SES error response: what botocore reports as ClientError's Error.Code and Error.Message."""

    code: str
    message: str
    status: int = 400


def refusal(
    request: Mapping[str, Any],
    *,
    identities: Collection[str],
    configuration_sets: Collection[str],
    region: str,
    sandbox: bool = False,
) -> Refusal | None:
    """Why SES v2 would refuse this SendEmail request (its API parameters, Raw Data as bytes or as the
    base64 text on the wire), or None when SES would accept it."""
    name = request.get("ConfigurationSetName")
    if not name:
        return Refusal(
            "BadRequestException",
            "ConfigurationSetName is required: the embedded SES refuses a send without the stack's "
            "configuration set (deployed, its bounce and complaint events would be lost)",
        )
    if name not in configuration_sets:
        return Refusal("NotFoundException", f"Configuration set <{name}> does not exist.", 404)
    raw, encoded_size = _raw(request)
    if encoded_size > MAX_RAW_MESSAGE_BYTES:
        return Refusal(
            "BadRequestException",
            f"Message length is more than {MAX_RAW_MESSAGE_BYTES} bytes long: '{encoded_size}'.",
        )
    headers = _headers(raw) if raw is not None else {}
    return _address_refusal(request, headers) or _identity_refusal(
        request, headers, {identity.lower() for identity in identities}, region, sandbox
    )


def _address_refusal(request: Mapping[str, Any], headers: Mapping[str, list[str]]) -> Refusal | None:
    destination = request.get("Destination") or {}
    fields: list[tuple[str, str]] = [("FromEmailAddress", str(request.get("FromEmailAddress") or ""))]
    for key in _DESTINATION_KEYS:
        fields += [(f"Destination.{key}", str(value)) for value in destination.get(key, [])]
    fields += [("ReplyToAddresses", str(value)) for value in request.get("ReplyToAddresses", [])]
    for field, value in fields:
        if value and (problem := address_problem(value)):
            return Refusal("BadRequestException", f"{problem} ({field}: {value})")
    for header, values in headers.items():
        for value in values:
            if problem := address_problem(value):
                return Refusal("MessageRejected", f"{problem} (header {header}: {value})")
    return None


def _identity_refusal(
    request: Mapping[str, Any],
    headers: Mapping[str, list[str]],
    verified: Collection[str],
    region: str,
    sandbox: bool,
) -> Refusal | None:
    sender = _bare(str(request.get("FromEmailAddress") or "") or next(iter(headers.get("From", [])), ""))
    if not _is_verified(sender, verified):
        return _not_verified([sender], region)
    if not sandbox:
        return None
    addresses = _recipients(request, headers)
    failed = [address for address in dict.fromkeys(addresses) if not _is_verified(address, verified)]
    return _not_verified(failed, region) if failed else None


def _recipients(request: Mapping[str, Any], headers: Mapping[str, list[str]]) -> list[str]:
    destination = request.get("Destination") or {}
    if destination:
        recipients = [str(value) for key in _DESTINATION_KEYS for value in destination.get(key, [])]
    else:  # SES takes the recipients from the raw message's headers then
        recipients = [value for header in ("To", "Cc", "Bcc") for value in headers.get(header, [])]
    return [address for _, address in email.utils.getaddresses(recipients) if address]


def recipient_count(request: Mapping[str, Any]) -> int:
    """How many recipients a SendEmail request counts for against the send rate (SES counts recipients, not
    messages); at least one."""
    raw = None if request.get("Destination") else _raw(request)[0]
    return max(1, len(_recipients(request, _headers(raw) if raw is not None else {})))


class SendRate:
    """SES's maximum send rate: `per_second` recipients a second, on `clock`. A bucket holding at most one
    second's worth (at least one recipient) refills continuously; a send is let through while it holds at
    least one recipient's worth and takes all its recipients, so a message to many recipients overdraws it
    and the sends after it are refused until that is paid back (as SES counts a message to five recipients
    at a rate of one a second: accepted, then five seconds of refusals). Exact fractions: a send due just
    when the bucket has refilled must not be refused for a rounding error."""

    def __init__(self, per_second: float, clock: Callable[[], datetime]) -> None:
        if not per_second > 0:
            raise ValueError(f"the maximum send rate must be positive, not {per_second}")
        self.per_second = per_second
        self.clock = clock
        self.accepted = 0
        self.throttled = 0
        self._rate = Fraction(per_second)
        self._capacity = max(self._rate, Fraction(1))
        self._tokens = self._capacity
        self._at: datetime | None = None
        self._lock = threading.Lock()

    def admit(self, recipients: int) -> bool:
        """Whether a send to `recipients` recipients is within the rate now (and if so, it is counted)."""
        with self._lock:
            now = self.clock()
            if self._at is not None and now > self._at:
                elapsed = Fraction((now - self._at) // _MICROSECOND, 1_000_000)
                self._tokens = min(self._capacity, self._tokens + elapsed * self._rate)
            self._at = now if self._at is None else max(self._at, now)
            if self._tokens < 1:
                self.throttled += 1
                return False
            self._tokens -= recipients
            self.accepted += 1
            return True


def address_problem(text: str) -> str | None:
    """What SES finds wrong with one address field value (one or more mailboxes), or None."""
    if text.isascii():
        return None
    for display_name, address in email.utils.getaddresses([text]):
        local, _, domain = address.rpartition("@")
        if not local.isascii():
            return "Local address contains illegal character"
        if not domain.isascii():
            return "Domain contains illegal character"
        if not display_name.isascii():
            return "Display name contains characters that are not 7-bit ASCII and not RFC 2047-encoded"
    return "Address contains characters that are not 7-bit ASCII"


def _not_verified(identities: Iterable[str], region: str) -> Refusal:
    listed = ", ".join(identities)
    return Refusal(
        "MessageRejected",
        f"Email address is not verified. The following identities failed the check in region "
        f"{region.upper()}: {listed}",
    )


def _is_verified(address: str, verified: Collection[str]) -> bool:
    """Covered by a verified identity: the address itself, or its domain (for senders and, in the
    sandbox, recipients alike)."""
    address = address.lower()
    return address in verified or address.rpartition("@")[2] in verified


_MICROSECOND = timedelta(microseconds=1)


def _bare(text: str) -> str:
    return email.utils.parseaddr(text)[1] or text.strip()


def _raw(request: Mapping[str, Any]) -> tuple[bytes | None, int]:
    """(raw message bytes, their size after base64 encoding) of a raw-content request."""
    data = ((request.get("Content") or {}).get("Raw") or {}).get("Data")
    if data is None:
        return None, 0
    if isinstance(data, bytes | bytearray):
        return bytes(data), 4 * ((len(data) + 2) // 3)
    text = str(data)
    try:
        return base64.b64decode(text, validate=False), len(text)
    except (binascii.Error, ValueError):
        return None, len(text)


def _headers(raw: bytes) -> dict[str, list[str]]:
    """The address headers of a raw message, exactly as written (not decoded: 8-bit bytes stay non-ASCII)."""
    message = email.parser.BytesHeaderParser(policy=email.policy.compat32).parsebytes(raw)
    wanted = {name.lower(): name for name in _ADDRESS_HEADERS}
    found: dict[str, list[str]] = {}
    for name, value in message.raw_items():
        if name.lower() in wanted:
            # Undecodable bytes come back as surrogate escapes; either way the value is not ASCII.
            text = str(value).encode("utf-8", "surrogateescape").decode("utf-8", "replace")
            found.setdefault(wanted[name.lower()], []).append(" ".join(text.split()))
    return found


# --- the moto hook ------------------------------------------------------------------------------------------


@dataclass
class EmbeddedSes:
    """The embedded SES's settings for one embedded stack."""

    region: str
    account_id: str
    sandbox: bool = False
    rate: SendRate | None = None

    @property
    def throttled(self) -> int:
        """How many sends were refused for going over the maximum send rate."""
        return self.rate.throttled if self.rate else 0

    def backend(self) -> Any:
        return moto_internals.ses_backend(self.account_id, self.region)

    def check(self, request: Mapping[str, Any]) -> Refusal | None:
        backend = self.backend()
        return refusal(
            request,
            identities=list(getattr(backend, moto_internals.SES_EMAIL_IDENTITIES.attribute)),
            configuration_sets=list(getattr(backend, moto_internals.SES_CONFIG_SETS.attribute)),
            region=self.region,
            sandbox=self.sandbox,
        ) or self._over_rate(request)

    def _over_rate(self, request: Mapping[str, Any]) -> Refusal | None:
        # After SES's other checks: a message SES refuses is not sent, so it does not count against the rate.
        if self.rate is None or self.rate.admit(recipient_count(request)):
            return None
        return Refusal(*MAX_SEND_RATE_EXCEEDED)


@contextmanager
def embedded_ses(
    region: str,
    account_id: str,
    *,
    sandbox: bool = False,
    max_send_rate: float | None = None,
    clock: Callable[[], datetime] | None = None,
) -> Iterator[EmbeddedSes]:
    """Make moto's SES v2 SendEmail refuse what SES refuses (inside mock_aws). The moto internals used here
    are listed in `dunning.local.moto_internals`. `max_send_rate`: the account's maximum send rate
    (recipients a second, measured on `clock`, the simulated one in a simulation); None: no limit."""
    json_rest_error: Any = moto_internals.JSON_REST_ERROR.owner()
    rate = None if max_send_rate is None else SendRate(max_send_rate, clock or (lambda: datetime.now(UTC)))
    settings = EmbeddedSes(region, account_id, sandbox, rate)
    original: Callable[[Any], str] = moto_internals.SESV2_SEND_EMAIL.get()

    def send_email(response: Any) -> str:
        request = json.loads(response.body or "{}")
        refused = settings.check(request)
        if refused is not None:
            error = json_rest_error(refused.code, refused.message)
            error.code = refused.status
            raise error
        return original(response)

    with moto_internals.SESV2_SEND_EMAIL.patch(send_email):
        yield settings


def create_ses_resources(sesv2: Any, verified: Iterable[str] = ()) -> None:
    """The stack's SES resources: the notices' configuration set, and (sandbox) verified recipients."""
    sesv2.create_configuration_set(ConfigurationSetName=NOTICE_CONFIGURATION_SET)
    for identity in verified:
        sesv2.create_email_identity(EmailIdentity=identity)
