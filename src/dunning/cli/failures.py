"""What went wrong in a simulated run, said plainly (CONTRACT 2): the summary and report.html list every
failure, and `dunning simulate` exits with status 3 when there was any.

A failure is: an execution that ended in `workflow_failed`; a notice SES refused (`notice_failed`); a notice
whose sending nobody can confirm (`notice_unconfirmed`: a person checks it); a call the
deployed role could not have made (AccessDenied: `access_denied` events, the embedded IAM's record, or an
event whose reason says so); interest left out of a notice or case for days without a reference rate
(`charges_incomplete`); a custom
template that does not compile or fails to render; an upload the ingest function failed on.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TextIO

from dunning.domain.events import EventType

EXIT_FAILURES = 3
# Exceptions Jinja raises for a template that cannot be compiled or rendered (an unknown variable is
# UndefinedError under StrictUndefined).
_TEMPLATE_ERRORS = frozenset({
    "UndefinedError", "TemplateSyntaxError", "TemplateAssertionError", "TemplateNotFound",
    "TemplatesNotFound", "TemplateRuntimeError", "TemplateError", "SecurityError",
})  # fmt: skip
_SHOWN = 20


@dataclass(frozen=True)
class Failure:
    # workflow failed | notice failed | unconfirmed | access denied | missing rate | template | upload failed
    kind: str
    at: str
    account_id: str
    detail: str


def collect(
    events: Sequence[Mapping[str, Any]], aws: Any, templates: Sequence[tuple[str, str]] = ()
) -> list[Failure]:
    found = [Failure("template", "", "", f"templates/{name}: {problem}") for name, problem in templates]
    denied_events = False
    for event in events:
        denied_events = denied_events or event.get("type") == EventType.ACCESS_DENIED
        failure = _from_event(event)
        if failure is not None:
            found.append(failure)
    if not denied_events:
        for call in getattr(aws, "denied_calls", None) or ():
            at = call.at.isoformat().replace("+00:00", "Z") if hasattr(call.at, "isoformat") else str(call.at)
            found.append(Failure("access denied", at, call.account_id, _denied(call.__dict__)))
    # A template that fails to render fails its function on every retry; say so even before (or without)
    # the execution giving up. Other function errors may succeed on a retry: workflow_failed counts those.
    scheduler = getattr(aws, "scheduler", None)
    errors = dict.fromkeys(str(e).splitlines()[0] for e in getattr(scheduler, "failures", None) or ())
    for error in errors:
        function, _, rest = error.partition(": ")
        if rest.partition(":")[0] in _TEMPLATE_ERRORS:
            found.append(Failure("template", "", "", f"{function} failed to render a notice: {_short(rest)}"))
    for upload in getattr(aws, "failed_uploads", None) or ():
        found.append(Failure("upload failed", "", "", f"{upload.key}: {_short(upload.error)}"))
    return found


def _from_event(event: Mapping[str, Any]) -> Failure | None:
    kind = str(event.get("type", ""))
    at, account = str(event.get("at", "")), str(event.get("account_id") or "")
    if kind == EventType.WORKFLOW_FAILED:
        error = str(event.get("error", ""))
        detail = f"{error}: {_short(event.get('cause', ''))}"
        return Failure("template" if error in _TEMPLATE_ERRORS else "workflow failed", at, account, detail)
    if kind == EventType.NOTICE_FAILED:
        detail = f"{event.get('stage', '')}: {_short(event.get('reason') or event.get('error') or '')}"
        return Failure("notice failed", at, account, detail)
    if kind == EventType.NOTICE_UNCONFIRMED:
        detail = (
            f"{event.get('stage', '')} ({event.get('eml', '')}) may or may not have gone out: "
            f"{_short(event.get('reason', ''))}; see README, Exactly once"
        )
        return Failure("unconfirmed", at, account, detail)
    if kind == EventType.CHARGES_INCOMPLETE:
        detail = f"{event.get('stage', '')} {event.get('currency', '')}: {_short(event.get('reason', ''))}"
        return Failure("missing rate", at, account, detail)
    if kind == EventType.ACCESS_DENIED:
        return Failure("access denied", at, account, _denied(event))
    if "AccessDenied" in str(event.get("reason", "")):
        return Failure("access denied", at, account, f"{kind}: {_short(event.get('reason'))}")
    return None


def _denied(call: Mapping[str, Any]) -> str:
    return f"{call.get('function', '')} may not {call.get('action', '')} on {call.get('resource', '')}"


def _short(value: Any, limit: int = 300) -> str:
    text = " ".join(str(value or "").split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def print_failures(failures: Sequence[Failure], out: TextIO) -> None:
    if not failures:
        return
    print(f"\nFAILURES: {len(failures)} (exit status {EXIT_FAILURES}; all of them in report.html)", file=out)
    for failure in failures[:_SHOWN]:
        where = " ".join(part for part in (failure.at, failure.account_id) if part)
        print(f"  {failure.kind:<15} {where + ': ' if where else ''}{failure.detail}", file=out)
    if len(failures) > _SHOWN:
        print(f"  ... and {len(failures) - _SHOWN} more", file=out)


def rows(failures: Sequence[Failure]) -> list[tuple[str, str, str, str]]:
    """For report.html: (kind, time, account, detail)."""
    return [(f.kind, f.at, f.account_id, f.detail) for f in failures]
