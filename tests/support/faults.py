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

import hashlib
import io
import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from botocore.exceptions import ClientError, ConnectionClosedError, EndpointConnectionError, ReadTimeoutError

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
        from dunning.runtime import Runtime

        make_client = Runtime.__dict__["sesv2"].func
        faults = self

        def sesv2(runtime: Runtime) -> Any:
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
        from dunning.embedded_sfn import _InProcessLambda

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


def crash_once_at(
    monkeypatch: pytest.MonkeyPatch, target: Any, name: str, when: Callable[..., bool], after: bool = False
) -> list[str]:
    """Make `target.name` raise the first time `when(*args, **kwargs)` holds for a call, before it runs,
    or with `after`, once it has run: the Lambda process dying at that point. Returns the crash record."""
    original = getattr(target, name)
    crashed: list[str] = []

    def crashing(*args: Any, **kwargs: Any) -> Any:
        hit = not crashed and when(*args, **kwargs)
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
