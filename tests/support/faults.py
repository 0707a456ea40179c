"""Faults the network and the platform make, injected into the embedded AWS where real AWS would make them.

- SES: an answer lost after SES accepted the message (a read timeout or a reset connection, raised inside
  botocore's send path after moto recorded the message, so that botocore's own retries would show up as
  duplicates; an HTTP 500 returned for an accepted message), and refusals that prove nothing was accepted
  (throttling, a connection that never opened).
- Lambda: a task's function ran but Step Functions never got its answer (Lambda.ServiceException), or it
  was throttled before it ran (Lambda.TooManyRequestsException).
- Crashes: the function dies at a chosen point of its own code.

Every choice is deterministic (a hash of what is being attempted and how often), so a failing run repeats.
"""

from __future__ import annotations

import email
import hashlib
import io
import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from botocore.exceptions import ClientError, ConnectionClosedError, EndpointConnectionError, ReadTimeoutError

from dunning.local.embedded_aws import LEGAL_BUCKET, LEGAL_TEAM_EMAIL
from tests.support.collections import World
from tests.support.files import invoice_row

SES_ENDPOINT = "https://email.eu-west-1.amazonaws.com"


def chance(key: str, rate: float) -> bool:
    """A deterministic coin: True for about `rate` of the keys."""
    digest = hashlib.sha256(key.encode()).digest()
    return int.from_bytes(digest[:4], "big") / 2**32 < rate


def _header(raw: bytes, name: bytes) -> str:
    if name not in raw:
        return ""
    return raw.split(name, 1)[1].split(b"\r\n", 1)[0].decode(errors="replace")


def message_key(raw: bytes) -> str:
    """What identifies one message across attempts: its recipients and its notice header (else subject)."""
    what = _header(raw, b"\r\nX-Dunning-Notice: ") or _header(raw, b"\r\nSubject: ")
    to = _header(raw, b"\r\nTo: ")
    return f"{to} {what}" if what else hashlib.sha256(raw).hexdigest()


@dataclass
class SesFaults:
    """Which SES attempts fail, and how. `kind`:
    - `timeout_after_accept`, `reset_after_accept`, `http500_after_accept`: SES took the message, the answer
      is lost;
    - `throttled`, `no_connection`: SES took nothing.
    `first_attempt_only`: only each message's first attempt fails; else each attempt fails with `rate`."""

    kind: str
    rate: float = 1.0
    first_attempt_only: bool = True
    attempts: Counter[str] = field(default_factory=Counter)
    injected: int = 0

    def _fails(self, raw: bytes) -> bool:
        key = message_key(raw)
        self.attempts[key] += 1
        number = self.attempts[key]
        if self.first_attempt_only and number > 1:
            return False
        if chance(f"{self.kind}#{key}#{number}", self.rate):
            self.injected += 1
            return True
        return False

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        from dunning.runtime.wiring import Runtime

        make_client = Runtime.__dict__["sesv2"].func
        faults = self

        def sesv2(runtime: Runtime[Any]) -> Any:
            client = make_client(runtime)
            if faults.kind in ("timeout_after_accept", "reset_after_accept"):
                # On the generic event, as moto's own handler is (a more specific name would run before
                # it): registered after it, this runs once moto has recorded the message, exactly like a
                # reply lost on the way back.
                client.meta.events.register("before-send", faults._lose_answer)
                return client
            return _Wrapped(client, faults)

        monkeypatch.setattr(Runtime, "sesv2", property(sesv2))

    def _lose_answer(self, request: Any, **_: Any) -> None:
        if not str(request.url).endswith("/v2/email/outbound-emails"):
            return
        if self._fails(_raw_of(request.body)):
            if self.kind == "timeout_after_accept":
                raise ReadTimeoutError(endpoint_url=SES_ENDPOINT)
            raise ConnectionClosedError(endpoint_url=SES_ENDPOINT)


def _raw_of(body: Any) -> bytes:
    import base64

    text = body.decode() if isinstance(body, bytes) else str(body)
    data = json.loads(text)["Content"]["Raw"]["Data"]
    return base64.b64decode(data)


class _Wrapped:
    """The SES client with faults around SendEmail (everything else passes through)."""

    def __init__(self, client: Any, faults: SesFaults) -> None:
        self._client = client
        self._faults = faults

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def send_email(self, **request: Any) -> Any:
        raw = request["Content"]["Raw"]["Data"]
        kind = self._faults.kind
        if kind == "throttled" and self._faults._fails(raw):
            raise _client_error("TooManyRequestsException", 429)
        if kind == "no_connection" and self._faults._fails(raw):
            raise EndpointConnectionError(endpoint_url=SES_ENDPOINT)
        if kind == "http500_after_accept":
            fails = self._faults._fails(raw)
            response = self._client.send_email(**request)
            if fails:
                raise _client_error("InternalFailure", 500)
            return response
        return self._client.send_email(**request)


def _client_error(code: str, status: int) -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": code}, "ResponseMetadata": {"HTTPStatusCode": status}},
        "SendEmail",
    )


@dataclass
class LambdaFaults:
    """Task invocations whose answer is lost after the function ran (`lost`), or that are throttled before
    it runs (`throttled`), for each (function, op) attempt with probability `rate`."""

    kind: str
    rate: float
    calls: Counter[str] = field(default_factory=Counter)
    injected: int = 0

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        from dunning.local.embedded_sfn import _InProcessLambda

        original = _InProcessLambda.invoke
        faults = self

        def invoke(
            fake: _InProcessLambda, FunctionName: str, Payload: bytes | str | None = None, **kw: Any
        ) -> dict[str, Any]:
            event = json.loads(Payload or "{}")
            key = (
                f"{FunctionName}#{event.get('op', '')}#{event.get('account_id', '')}#{event.get('stage', '')}"
            )
            faults.calls[key] += 1
            fails = chance(f"{faults.kind}#{key}#{faults.calls[key]}", faults.rate)
            if fails and faults.kind == "throttled":
                faults.injected += 1
                return _function_error("Lambda.TooManyRequestsException")
            response = original(fake, FunctionName, Payload, **kw)
            if fails and faults.kind == "lost":
                faults.injected += 1
                return _function_error("Lambda.ServiceException")
            return response

        monkeypatch.setattr(_InProcessLambda, "invoke", invoke)


def _function_error(error: str) -> dict[str, Any]:
    body = {"errorType": error, "errorMessage": "injected"}
    return {"StatusCode": 200, "FunctionError": "Unhandled", "Payload": io.BytesIO(json.dumps(body).encode())}


@dataclass(frozen=True)
class CrashPoint:
    """Where a Lambda process dies: `target` (module or module:Class) `name`, before or after it runs."""

    label: str
    target: str
    name: str
    after: bool

    def install(self, monkeypatch: pytest.MonkeyPatch, nth: int = 1) -> list[str]:
        import importlib

        module, _, owner = self.target.partition(":")
        target = importlib.import_module(module)
        return crash_once_at(
            monkeypatch, getattr(target, owner) if owner else target, self.name, self._when, self.after, nth
        )

    def _when(self, *args: Any, **_: Any) -> bool:
        # finish_send(self, notice, status, ...): only the acknowledgement of a send.
        return self.name != "finish_send" or (len(args) > 2 and args[2] == "sent")


CRASH_POINTS = {
    "before_ses": CrashPoint(
        "crash between reservation and SES", "dunning.adapters.mailer:SesMailer", "send", False
    ),
    "after_ses": CrashPoint(
        "crash after SES accepted, before the log", "dunning.adapters.mailer:SesMailer", "send", True
    ),
    "after_log": CrashPoint(
        "crash after the log, before the acknowledgement",
        "dunning.adapters.ladders:DynamoLadders",
        "finish_send",
        False,
    ),
    "handoff": CrashPoint(
        "crash after marking the account legal", "dunning.adapters.ladders:DynamoLadders", "mark_legal", True
    ),
}


def crash_once_at(
    monkeypatch: pytest.MonkeyPatch,
    target: Any,
    name: str,
    when: Callable[..., bool],
    after: bool = False,
    nth: int = 1,
) -> list[str]:
    """Make `target.name` raise the `nth` time `when(*args, **kwargs)` holds for a call, before it runs,
    or with `after`, once it has run: the Lambda process dying at that point. Returns the crash record."""
    original = getattr(target, name)
    crashed: list[str] = []
    seen = [0]

    def crashing(*args: Any, **kwargs: Any) -> Any:
        if not crashed and when(*args, **kwargs):
            seen[0] += 1
        hit = not crashed and seen[0] == nth
        if hit and not after:
            crashed.append(name)
            raise RuntimeError(f"injected crash before {name}")
        result = original(*args, **kwargs)
        if hit:
            crashed.append(name)
            raise RuntimeError(f"injected crash after {name}")
        return result

    monkeypatch.setattr(target, name, crashing)
    return crashed


# --- the portfolio the fault matrix runs, and the promises checked after every run ------------------

# NEVER, 40 days overdue on the first day, gets the demand letter, the final notice after its deadline
# (16 March) and the hand-off after that one's (1 April, Easter in between).
START, END = date(2027, 3, 1), date(2027, 4, 2)
LONDON = ZoneInfo("Europe/London")
# account -> the day from which it owes nothing (nothing may be sent to it from that day's start on)
SETTLED_ON = {"PAYS": date(2027, 3, 12), "PARTIAL": date(2027, 3, 20), "TOKYO": date(2027, 3, 8)}
PAYMENTS = [
    ("PAYS", "P-1", "250.00", date(2027, 3, 12)),
    ("PARTIAL", "Q-1", "200.00", date(2027, 3, 5)),
    ("PARTIAL", "Q-1", "200.00", date(2027, 3, 20)),
    ("TOKYO", "T-1", "90.00", date(2027, 3, 8)),
    ("PROMISE", "R-1", "120.00", date(2027, 3, 9)),
]


def portfolio(w: World) -> None:
    w.invoices(
        invoice_row("N-1", account_id="NEVER", amount="500.00", due_on="2027-01-20", issued_on="2026-12-20"),
        invoice_row("P-1", account_id="PAYS", amount="250.00", due_on="2027-03-03"),
        invoice_row("Q-1", account_id="PARTIAL", amount="400.00", due_on="2027-03-02"),
        invoice_row("T-1", account_id="TOKYO", amount="90.00", due_on="2027-03-01", timezone="Asia/Tokyo"),
        invoice_row("R-1", account_id="PROMISE", amount="120.00", due_on="2027-02-25"),
    )
    for account, invoice, amount, on in PAYMENTS:
        w.payment(account, invoice, amount, on)
    w.action("PROMISE", "promise", date(2027, 3, 2), until="2027-03-09")


def _sent(w: World) -> list[email.message.EmailMessage]:
    return w.sent_emails()


def check_promises(w: World) -> dict[str, int]:
    """The promises of exactly-once, checked on what SES received and what the ledger says."""
    from moto.ses.models import ses_backends

    raws = [m.raw_data.encode() for m in ses_backends["123456789012"]["eu-west-1"].sent_messages]
    keys = Counter(message_key(raw) for raw in raws)
    duplicates = {key: n for key, n in keys.items() if n > 1}
    assert duplicates == {}, f"sent more than once: {duplicates}"

    messages = _sent(w)
    for account, settled in SETTLED_ON.items():
        start = datetime.combine(settled, datetime.min.time(), tzinfo=LONDON)
        late = [
            m["X-Dunning-Notice"]
            for m in messages
            if f"@{account.lower()}.example.com" in str(m["To"]) and m["Date"].datetime >= start
        ]
        assert late == [], f"{account} was sent {late} after paying on {settled}"

    for account, invoice, amount, on in PAYMENTS:
        applied = [
            e
            for e in w.events(account, "payment_applied")
            if e["invoice_id"] == invoice and e["amount"] == amount and e["at"].startswith(on.isoformat())
        ]
        assert len(applied) == 1, f"payment {account}/{invoice} {amount} on {on} applied {len(applied)} times"

    # Every account on the ladder long enough reaches the legal team, once (an unconfirmed final notice
    # included: the packet says so).
    expected_cases = 1
    cases = w.events("NEVER", "case_opened")
    assert len(cases) == expected_cases, f"{len(cases)} cases opened"
    legal = [m for m in messages if LEGAL_TEAM_EMAIL in str(m["To"])]
    assert len(legal) == expected_cases, f"{len(legal)} emails to the legal team"
    # The legal team's email is logged as sent, or (its SES answer lost) as unconfirmed: never neither.
    unconfirmed_legal = [e for e in w.events("NEVER", "notice_unconfirmed") if e["stage"] == "legal_handoff"]
    assert len(w.events("NEVER", "legal_notified")) + len(unconfirmed_legal) == expected_cases
    packets = w.aws.s3.list_objects_v2(Bucket=LEGAL_BUCKET).get("KeyCount", 0)
    assert packets >= expected_cases, "no packet in the legal bucket"
    for account in ("NEVER", "PAYS", "PARTIAL", "TOKYO", "PROMISE"):
        assert len(w.events(account, "account_settled")) <= 1
    # Every message a customer got is in the contact log (sent, or unconfirmed for a person to check).
    logged = sum(len(w.events(a, "notice_sent", "notice_unconfirmed")) for a in SETTLED_ON | {"NEVER": 0})
    logged += len(w.events("PROMISE", "notice_sent", "notice_unconfirmed"))
    customers = [m for m in messages if LEGAL_TEAM_EMAIL not in str(m["To"])]
    assert len(customers) <= logged, "a message SES received is missing from the contact log"
    return {"messages": len(messages), "unconfirmed": sum(
        len(w.events(a, "notice_unconfirmed")) for a in ("NEVER", "PAYS", "PARTIAL", "TOKYO", "PROMISE")
    )}  # fmt: skip
