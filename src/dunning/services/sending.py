"""Sending one notice: re-check, render, hand to SES exactly once, log. (A letter to post, a `channel: letter`
stage, is rendered the same way and printed to PDF for a person instead: `_post`.)

Exactly once, even across crashes and lost answers. Before the message goes to SES the send is reserved in
the ledger (NOTICE item, status `sending`, with what the notice says) and its exact bytes are archived;
then the account is re-checked once more, immediately before SES, so a payment, promise, dispute or pause
recorded while the notice was being rendered still stops it. Then what SES answered decides:
- proof that SES accepted nothing (throttled, sending paused, no connection): the reservation is dropped
  and the error raised, so the state machine's retry sends it later;
- proof that SES refused it (any other 4xx, AccessDenied included), or an address SES could never take:
  the reservation is marked `failed`, `notice_failed` is logged with SES's reason and the NoticeFailed
  metric counted. The rung is not done: the ladder tries the stage again on the next business day, and
  only a `failed` reservation can be taken again, by one attempt at a time;
- SES accepted: `notice_sent` is logged first, then the reservation becomes `sent` (log, then
  acknowledge: a crash between the two is repaired by the retry, which finds the logged event);
- no proof either way (a read timeout, a reset connection, an HTTP 5xx: the request went out and the answer
  was lost), or the process died between reserving and logging: nobody can know whether SES accepted it,
  so it is *never* sent again. The reservation becomes `unconfirmed`, `notice_unconfirmed` is logged with
  everything the notice said (its archived copy included) and the NoticeUnconfirmed alarm fires, for a
  person to check (README: "Exactly once"). Never sending a notice twice wins over never missing one.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from aws_lambda_powertools import Logger

from dunning.domain.account import AccountSnapshot, InvoiceState, NoticeRecord
from dunning.domain.calendar import local_date
from dunning.domain.clock import Clock, rfc3339
from dunning.domain.events import EventType
from dunning.domain.ladder import (
    PRE_ACTION_REPLY_DAYS,
    Decision,
    LogEntry,
    decide,
    letter_of_claim,
    payment_deadline,
)
from dunning.domain.models import postal_address_lines
from dunning.domain.money import format_amount
from dunning.domain.naming import eml_name
from dunning.domain.notices import FAILED, SENDING, SENT, UNCONFIRMED, NoticeId, said, sent_entry
from dunning.domain.owed import Owed, charge_to_json, owed
from dunning.domain.policy import Policy, Stage
from dunning.domain.tasks import task_id_for
from dunning.notices.context import agreement_terms, business_of, notice_invoice
from dunning.notices.mime import Attachment, UnsendableAddress, build_message
from dunning.notices.render import NoticeContext, RenderedNotice, render_notice
from dunning.ports import (
    MISSING_REFERENCE_RATE,
    NOTICE_FAILED,
    NOTICE_UNCONFIRMED,
    Archive,
    Books,
    Documents,
    Ladders,
    Mailer,
    Pacer,
    Record,
    SendRejected,
    SendThrottled,
    SendUnconfirmed,
)
from dunning.services.tasks import letter_key, open_task

logger = Logger(service="dunning", child=True)

# A send re-checked within this long after the moment the ladder chose still counts as on time.
SEND_TOLERANCE = timedelta(minutes=5)
_SKIP_REASON = {"settled": "paid", "ladder": "not_due"}


@dataclass(frozen=True)
class SendRequest:
    account_id: str
    episode: int
    stage: str
    execution: str
    currency: str

    @property
    def notice(self) -> NoticeId:
        """The notice this request sends: every step of the send reads or writes its one record."""
        return NoticeId(self.account_id, self.currency, self.episode, self.stage)


@dataclass(frozen=True)
class Collaborators:
    books: Books
    mailer: Mailer
    archive: Archive
    documents: Documents
    policy: Policy
    clock: Clock
    template_dirs: Sequence[Path]
    # The account's SES sending rate across every send at once (None: SES's own throttling only).
    pacer: Pacer | None = None


def send_notice(request: SendRequest, deps: Collaborators) -> dict[str, Any]:
    now = deps.clock.now()
    snapshot = deps.books.ladders.load(request.account_id, request.currency)
    existing = deps.books.ladders.notice_status(request.notice)
    if existing is not None and existing.get("status") != FAILED:
        return _already_attempted(request, deps, existing, now)

    decision = decide(snapshot, deps.policy, now)
    if not _still_due(request, snapshot, decision, now):
        reason = _SKIP_REASON.get(decision.reason, decision.reason)
        _skip(deps.books, request, now, reason)
        return {"sent": False, "reason": reason}
    return _send(request, deps, snapshot, decision, now)


def _still_due(request: SendRequest, snapshot: AccountSnapshot, decision: Decision, now: datetime) -> bool:
    return (
        decision.next == "send"
        and decision.stage is not None
        and decision.stage.name == request.stage
        and decision.at is not None
        and decision.at <= now + SEND_TOLERANCE
        and snapshot.state.episode == request.episode
    )


def _take_a_place(request: SendRequest, deps: Collaborators) -> None:
    """A place among this second's sends (SesMaxSendRate). When they are all taken, as when SES throttles:
    nothing went out, the reservation goes, and the state machine sends again after a jittered wait."""
    if deps.pacer is not None and not deps.pacer.admit(deps.clock.now()):
        deps.books.ladders.cancel_send(request.notice)
        raise SendThrottled("over the account's sending rate (SesMaxSendRate)")


def _recheck(request: SendRequest, deps: Collaborators, reserved_at: datetime) -> str | None:
    """The last look before SES: None if the notice is still due, else why not (e.g. `paid`)."""
    now = deps.clock.now()
    snapshot = deps.books.ladders.load(request.account_id, request.currency)
    mine = (request.currency, request.episode, request.stage)
    ours = (rfc3339(reserved_at), request.currency)

    def counts(notice: NoticeRecord) -> bool:
        # Decided as if this attempt's own reservation were not there yet (it would count as the rung done).
        if (notice.currency, notice.episode, notice.stage) == mine:
            return False
        # Another currency's notice being sent at the same moment: the one reserved first (then the currency
        # first in the alphabet) goes, the other waits for the gap; never both, never neither.
        return not (notice.status == SENDING and (notice.at, notice.currency or "") > ours)

    snapshot = dataclasses.replace(
        snapshot,
        notices=tuple(filter(counts, snapshot.notices)),
        account_notices=tuple(filter(counts, snapshot.account_notices)),
    )
    decision = decide(snapshot, deps.policy, now)
    if _still_due(request, snapshot, decision, now):
        return None
    return _SKIP_REASON.get(decision.reason, decision.reason)


@dataclass(frozen=True)
class Composed:
    """A notice as it will go out: what it demands, its context, its text, and what is attached."""

    due: Owed
    context: NoticeContext
    rendered: RenderedNotice
    attachments: dict[str, Attachment]


def _send(
    request: SendRequest, deps: Collaborators, snapshot: AccountSnapshot, decision: Decision, now: datetime
) -> dict[str, Any]:
    assert decision.stage is not None
    stage = decision.stage
    if stage.channel == "letter":
        # Printed and posted by a person: an email opt-out does not stop a letter.
        return _post(request, deps, snapshot, stage, _compose(request, deps, snapshot, decision, now), now)
    if snapshot.opted_out(local_date(now, snapshot.timezone)):
        return _pass_over(request, deps, now, "opted_out")
    return _email(request, deps, snapshot, decision, _compose(request, deps, snapshot, decision, now), now)


def _compose(
    request: SendRequest, deps: Collaborators, snapshot: AccountSnapshot, decision: Decision, now: datetime
) -> Composed:
    """The notice the ladder's decision calls for, from the account as it stands `now`."""
    assert decision.stage is not None
    stage = decision.stage
    invoices = list(decision.invoices)
    currency = request.currency
    today = local_date(now, snapshot.timezone)
    ladder = deps.policy.ladder_for(snapshot.segment)
    claim = decision.agreement is None and letter_of_claim(snapshot, ladder, stage)
    deadline = None
    if stage.as_letter:
        deadline = (
            today + timedelta(PRE_ACTION_REPLY_DAYS) if claim else payment_deadline(today, snapshot.country)
        )
    due = owed(
        snapshot,
        currency,
        on=today,
        policy=deps.policy,
        stage=stage.name,
        invoice_ids=[invoice.invoice_id for invoice in invoices],
        with_charges=stage.name in deps.policy.charges.show_on,
    )
    consumer = snapshot.customer_type == "consumer"
    terms = deps.policy.charges.terms_for(currency, consumer)
    context = NoticeContext(
        stage=stage.template_name,
        locale=str(snapshot.profile.get("locale", deps.policy.default_locale)),
        customer_name=str(snapshot.profile.get("customer_name", request.account_id)),
        account_id=request.account_id,
        invoices=tuple(notice_invoice(invoice, today) for invoice in invoices),
        total_due=due.amount_due,
        currency=currency,
        business=business_of(deps.policy),
        sent_on=today,
        deadline=deadline,
        charges=due.charges,
        consumer=consumer,
        charges_apply=terms.any,
        interest_law=terms.regime if terms.interest == "statutory" else None,
        legal_action=ladder.stages[-1].is_handoff,
        postal_address=postal_address_lines(snapshot.profile),
        pre_action_protocol=claim,
        agreement=agreement_terms(decision.agreement) if decision.agreement else None,
        posted=stage.channel == "letter",
    )
    attachments = _invoice_attachments(deps.documents, context, invoices) if stage.attach_invoices else {}
    context = dataclasses.replace(
        context,
        invoices=tuple(
            dataclasses.replace(line, attached=line.invoice_id in attachments) for line in context.invoices
        ),
    )
    rendered = render_notice(context, deps.template_dirs, letter=stage.as_letter)
    if stage.letter and stage.channel == "email":
        name = f"{stage.name.replace('_', '-')}-{today.isoformat()}.pdf"
        attachments[name] = Attachment(name, _letter_pdf(context, rendered))
    return Composed(due, context, rendered, attachments)


def _letter_pdf(context: NoticeContext, rendered: RenderedNotice) -> bytes:
    from dunning.notices.pdf import letter_pdf  # fpdf2 takes a moment to import: only when a PDF is made

    return letter_pdf(context, rendered)


def _post(
    request: SendRequest,
    deps: Collaborators,
    snapshot: AccountSnapshot,
    stage: Stage,
    composed: Composed,
    now: datetime,
) -> dict[str, Any]:
    """A letter to post (a `channel: letter` stage): the letter is printed to PDF, addressed as on an
    envelope, and archived; a `letter` task opens for a person to print and post it, and the rung is done.
    A step retried makes the same PDF and finds the task open."""
    key = letter_key(task_id_for(request.account_id, request.currency, request.episode, stage.name, "letter"))
    deps.archive.put(key, _letter_pdf(composed.context, composed.rendered))
    letter = {"letter": key, **_figures(composed.due, request.currency)}
    task = open_task(deps.books, deps.policy, snapshot, stage, now, details=letter)
    logger.info("Letter to post", extra={"account_id": request.account_id, "stage": stage.name})
    return {"sent": False, "reason": "letter_task", "task_id": task.task_id, "letter": key}


def _figures(due: Owed, currency: str) -> dict[str, Any]:
    """What a notice demands, as its events record it (one function decides what is owed: domain.owed)."""
    return {
        "invoice_ids": due.invoice_ids,
        "amount_due": format_amount(due.amount_due, currency),
        "charges": format_amount(due.charges_total, currency),
        "total_due": format_amount(due.total_due, currency),
        "currency": currency,
        "charge_lines": [charge_to_json(line) for line in due.charges],
    }


def _email(
    request: SendRequest,
    deps: Collaborators,
    snapshot: AccountSnapshot,
    decision: Decision,
    composed: Composed,
    now: datetime,
) -> dict[str, Any]:
    assert decision.stage is not None
    stage = decision.stage
    currency = request.currency
    due, rendered, attachments = composed.due, composed.rendered, composed.attachments
    addresses = [str(address) for address in snapshot.profile.get("emails", [])]
    blocked = deps.books.suppressions.suppressed(addresses)
    recipients = [address for address in addresses if address not in blocked]
    if not recipients:
        return _pass_over(request, deps, now, "suppressed")
    name = eml_name(now, request.account_id, currency, stage.name)
    try:
        raw = build_message(
            rendered=rendered,
            sender=deps.policy.sender,
            to=recipients,
            reply_to=deps.policy.business.reply_to,
            sent_at=now,
            message_id=f"<{name.removesuffix('.eml')}@dunning>",
            attachments=list(attachments.values()),
            headers={"X-Dunning-Notice": f"{currency}/{request.episode}/{stage.name}"},
        )
    except UnsendableAddress as exc:
        # SES would refuse it (no SMTPUTF8): refused here, before anything is handed over, the same way.
        if not deps.books.ladders.begin_send(request.notice, now, ""):
            existing = deps.books.ladders.notice_status(request.notice)
            return _already_attempted(request, deps, existing or {}, now)
        return _refused(request, deps, now, f"unsendable address: {exc}")
    archive_key = f"notices/{name}"
    deps.archive.put(archive_key, raw)
    notice = {
        # An agreement's email is logged by its kind (its record's name also says which agreement).
        "stage": stage.template_name if decision.agreement else stage.name,
        **_figures(due, currency),
        "to": recipients,
        "eml": name,
    }
    if not deps.books.ladders.begin_send(request.notice, now, archive_key, notice):
        existing = deps.books.ladders.notice_status(request.notice)
        return _already_attempted(request, deps, existing or {}, now)
    reason = _recheck(request, deps, now)
    if reason is not None:
        # Paid, promised, disputed or paused while the notice was being made: it never goes out.
        deps.books.ladders.cancel_send(request.notice)
        _skip(deps.books, request, now, reason)
        return {"sent": False, "reason": reason}
    _take_a_place(request, deps)
    try:
        message_id = deps.mailer.send(deps.policy.sender, recipients, raw, request.account_id)
    except SendThrottled:
        deps.books.ladders.cancel_send(request.notice)
        raise
    except SendRejected as exc:
        return _refused(request, deps, now, str(exc))
    except SendUnconfirmed as exc:
        return _unconfirmed(request, deps, now, notice, f"SES's answer was lost: {exc}")
    # From here on SES has the message: a failure below must never lead to sending it again.
    deps.books.log.log(request.account_id, now, [sent_entry(request.notice, notice, message_id)])
    report_missing_rates(deps.books, request.account_id, now, due, stage.name)
    deps.books.ladders.finish_send(request.notice, SENT, message_id=message_id, recipients=len(recipients))
    logger.info(
        "Notice sent", extra={"account_id": request.account_id, "stage": stage.name, "message_id": message_id}
    )
    return {"sent": True, "message_id": message_id, "eml": name}


def _refused(request: SendRequest, deps: Collaborators, now: datetime, reason: str) -> dict[str, Any]:
    """Nothing went out (the reservation is held): mark it failed so that the next business day's attempt
    may take it, log notice_failed, count the alarm's metric."""
    deps.books.ladders.finish_send(request.notice, FAILED, error=reason[:1000])
    identity = f"{request.currency}#{request.episode}#{request.stage}#{rfc3339(now)}"
    entry = LogEntry(EventType.NOTICE_FAILED, identity, {"stage": request.stage, "reason": reason[:1000]})
    deps.books.log.log(request.account_id, now, [entry])
    deps.books.counter.count(NOTICE_FAILED)
    logger.warning(
        "SES refused the notice; the stage is tried again on the next business day",
        extra={"account_id": request.account_id, "stage": request.stage, "reason": reason[:1000]},
    )
    return {"sent": False, "failed": True, "reason": reason[:1000]}


def _unconfirmed(
    request: SendRequest, deps: Collaborators, at: datetime, notice: dict[str, Any], reason: str
) -> dict[str, Any]:
    """SES may have the message: never send it again; say so loudly, with everything a person needs to
    check it (the archived copy is `eml`)."""
    data = {**said(notice), "stage": request.stage, "reason": reason}
    entry = LogEntry(EventType.NOTICE_UNCONFIRMED, request.notice.identity, data)
    deps.books.log.log(request.account_id, at, [entry])
    if not deps.books.ladders.finish_send(request.notice, UNCONFIRMED, only_if=(SENDING,), reason=reason):
        return {"sent": False, "reason": "already_sent"}  # SES's Send event confirmed it meanwhile
    deps.books.counter.count(NOTICE_UNCONFIRMED)
    logger.warning(
        "SES may or may not have accepted this notice; it is not sent again",
        extra={"account_id": request.account_id, "stage": request.stage, "reason": reason},
    )
    return {"sent": False, "reason": "unconfirmed"}


def _already_attempted(
    request: SendRequest, deps: Collaborators, existing: Record, now: datetime
) -> dict[str, Any]:
    status = existing.get("status")
    if status == "sending":
        # An earlier attempt reserved the notice and did not finish: it died, or timed out, somewhere
        # between the reservation and the acknowledgement.
        started = datetime.fromisoformat(str(existing["started_at"]))
        notice = existing.get("notice") or {"stage": request.stage}
        logged = deps.books.log.logged_event(
            request.account_id, started, sent_entry(request.notice, notice, "")
        )
        if logged is not None:
            # SES accepted it and notice_sent was logged: only the acknowledgement was lost.
            deps.books.ladders.finish_send(
                request.notice,
                SENT,
                message_id=logged.get("message_id", ""),
                recipients=len(logged.get("to", [])),
            )
            return {"sent": False, "reason": "already_sent"}
        return _unconfirmed(
            request, deps, started, notice, "an earlier attempt stopped after reserving the notice"
        )
    return {"sent": False, "reason": f"already_{status}"}


def _pass_over(request: SendRequest, deps: Collaborators, now: datetime, reason: str) -> dict[str, Any]:
    """This stage's notice cannot be emailed (opted out, every address suppressed): record the stage as
    passed so the ladder moves on to its later steps (and the hand-off) instead of retrying it."""
    deps.books.ladders.begin_send(request.notice, now, archive_key="")
    deps.books.ladders.finish_send(request.notice, "skipped", reason=reason)
    _skip(deps.books, request, now, reason)
    return {"sent": False, "reason": reason}


def _skip(books: Books, request: SendRequest, now: datetime, reason: str) -> None:
    identity = f"{request.currency}#{request.episode}#{request.stage}#{reason}#{rfc3339(now)[:10]}"
    entry = LogEntry(EventType.NOTICE_SKIPPED, identity, {"stage": request.stage, "reason": reason})
    books.log.log(request.account_id, now, [entry])


def ladder_currency(ladders: Ladders, account_id: str, currency: str | None) -> str:
    """The currency an execution walks; an execution started before ladders were per currency carries
    none and walks the currency of the account's earliest open invoice (what it walked before)."""
    if currency:
        return currency
    owed_in = ladders.load(account_id).currencies()
    return owed_in[0] if owed_in else "EUR"


def report_missing_rates(books: Books, account_id: str, at: datetime, due: Owed, stage: str) -> None:
    """Interest that could not be computed (no reference rate for some days) is a loud failure: logged as
    `charges_incomplete` (the summary and report list it; the charge module counted the alarm's metric)."""
    if not due.missing_rates:
        return
    # The alarm counts each stretch of days left out.
    books.counter.count(MISSING_REFERENCE_RATE, len(due.missing_rates))
    reasons = [missing.describe() for missing in due.missing_rates]
    entry = LogEntry(
        EventType.CHARGES_INCOMPLETE,
        f"{due.currency}#{stage}#{due.on.isoformat()}",
        {"stage": stage, "currency": due.currency, "reason": "; ".join(reasons)[:1000]},
    )
    books.log.log(account_id, at, [entry])
    logger.warning(
        "Interest left out: reference rate missing", extra={"account_id": account_id, "stage": stage}
    )


def _invoice_attachments(
    documents: Documents, context: NoticeContext, invoices: list[InvoiceState]
) -> dict[str, Attachment]:
    """Each invoice's uploaded PDF, or a generated copy where none was uploaded, by invoice id."""
    found = {}
    for invoice, line in zip(invoices, context.invoices, strict=True):
        pdf = documents.invoice_pdf(context.account_id, invoice.document, invoice.invoice_id)
        if pdf is None:
            from dunning.notices.pdf import invoice_copy_pdf

            copy = invoice_copy_pdf(
                business=context.business,
                customer_name=context.customer_name,
                account_id=context.account_id,
                invoice=line,
                amount=invoice.amount,
                issued_on=invoice.issued_on,
                locale=context.locale,
            )
            pdf = (f"{invoice.invoice_id}-copy.pdf", copy)
        found[invoice.invoice_id] = Attachment(*pdf)
    return found
