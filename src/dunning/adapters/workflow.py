"""The workflow's records in the ledger: who is walking an account up the ladder, which episode it is in,
and which notices of that episode have been (or are being) sent.

    STATE item   PK = ACCOUNT#<id>, SK = STATE#<currency>                 episode, status (idle|active|legal),
                                                                           owner; legal: case_id,
                                                                           handed_over_at, handoff
    NOTICE item  PK = ACCOUNT#<id>, SK = NOTICE#<currency>#<episode>#<stage>  status (sending|sent|
                                                                           unconfirmed|skipped|failed),
                                                                           attempts, message_id, recipients

One ladder per currency (CONTRACT 7): an account owing in two currencies is walked twice, each walk with its
own state, episodes, notices and case. Records kept before that (SK = STATE, NOTICE#<episode>#<stage>) are
still read: the old state seeds each currency's, an old notice counts for the currency it demanded.

A `failed` notice is one SES refused (or could not have been given: an address SES cannot take): nothing
went out, so it is not a rung done, and its reservation may be taken again by a later attempt (the ladder
tries the stage again on the next business day). Every other status holds the reservation for good.

An *episode* runs from an account first needing attention until it is settled (or handed to legal); the
notices of an episode are what the ladder has done so far, whichever execution did it. Executions claim
the account with a conditional write, so two executions can never walk one account at the same time.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from dunning.adapters.keys import account_pk, event_sk, notice_key, state_key
from dunning.adapters.ledger import Ledger, plain
from dunning.domain.account import AccountSnapshot
from dunning.domain.clock import rfc3339
from dunning.domain.events import Event, EventType
from dunning.domain.ladder import LogEntry


def load(ledger: Ledger, account_id: str, currency: str | None = None) -> AccountSnapshot:
    """The account; with `currency`, the view of that currency's ladder."""
    return AccountSnapshot.from_items(account_id, ledger.account_items(account_id), currency)


def ladder_currency(ledger: Ledger, account_id: str, currency: str | None) -> str:
    """The currency an execution walks; an execution started before ladders were per currency carries
    none and walks the currency of the account's earliest open invoice (what it walked before)."""
    if currency:
        return currency
    owed_in = load(ledger, account_id).currencies()
    return owed_in[0] if owed_in else "EUR"


def claim(
    ledger: Ledger, account_id: str, currency: str, owner: str, now: datetime, episode: int = 0
) -> bool:
    """Make `owner` (an execution name) the one walking this currency of the account; False if another
    execution owns it or it is with the legal team. `episode` seeds a new record (from an old-style one)."""
    return ledger.update(
        state_key(account_id, currency),
        condition="(attribute_not_exists(#owner) OR #owner = :me) AND "
        "(attribute_not_exists(#status) OR #status <> :legal)",
        UpdateExpression="SET #owner = :me, #status = :active, kind = :kind, account_id = :account, "
        "currency = :currency, episode = if_not_exists(episode, :episode), "
        "claimed_at = if_not_exists(claimed_at, :now)",
        ExpressionAttributeNames={"#owner": "owner", "#status": "status"},
        ExpressionAttributeValues={
            ":me": owner,
            ":active": "active",
            ":legal": "legal",
            ":kind": "state",
            ":episode": episode,
            ":now": rfc3339(now),
            ":account": account_id,
            ":currency": currency,
        },
    )


def release(ledger: Ledger, account_id: str, currency: str, owner: str, *, settled: bool) -> None:
    """The execution is done with the account; a settled account starts its next episode afresh."""
    settle = ", settled_by = :me ADD episode :one" if settled else ""
    expression = "REMOVE #owner SET #status = :idle" + settle
    values: dict[str, Any] = {":me": owner, ":idle": "idle", ":legal": "legal"}
    if settled:
        values[":one"] = 1
    ledger.update(
        state_key(account_id, currency),
        condition="#owner = :me AND #status <> :legal",
        UpdateExpression=expression,
        ExpressionAttributeNames={"#owner": "owner", "#status": "status"},
        ExpressionAttributeValues=values,
    )


def release_dead_owner(ledger: Ledger, account_id: str, currency: str, dead_owner: str) -> bool:
    """Free a ladder whose owning execution ended without releasing it (the scan found it closed)."""
    return ledger.update(
        state_key(account_id, currency),
        condition="#owner = :dead AND #status <> :legal",
        UpdateExpression="REMOVE #owner SET #status = :idle",
        ExpressionAttributeNames={"#owner": "owner", "#status": "status"},
        ExpressionAttributeValues={":dead": dead_owner, ":idle": "idle", ":legal": "legal"},
    )


# The hand-off's own progress on the STATE item: `open` from mark_legal until every part of it is done
# (packet, case record, case_opened, the legal team's email), then `done`. Accounts handed over before this
# field existed have none and count as done.
HANDOFF_OPEN = "open"
HANDOFF_DONE = "done"


@dataclass(frozen=True)
class Handoff:
    """An account with the legal team: its case, when it was handed over, and who is finishing it."""

    case_id: str
    at: datetime  # the hand-off instant: every retry dates the case (and its case_opened) by it
    open: bool
    owner: str | None


def mark_legal(
    ledger: Ledger, account_id: str, currency: str, owner: str, case_id: str, now: datetime
) -> bool:
    """The account's debt in `currency` goes to the legal team. The owner stays on the record until
    finish_handoff, so that the scan can tell a hand-off still being worked on from one whose execution
    died half-way."""
    return ledger.update(
        state_key(account_id, currency),
        condition="#owner = :me AND #status <> :legal",
        UpdateExpression="SET #status = :legal, case_id = :case, handed_over_at = :now, #handoff = :open",
        ExpressionAttributeNames={"#owner": "owner", "#status": "status", "#handoff": "handoff"},
        ExpressionAttributeValues={
            ":me": owner,
            ":legal": "legal",
            ":case": case_id,
            ":now": rfc3339(now),
            ":open": HANDOFF_OPEN,
        },
    )


def handoff(ledger: Ledger, account_id: str, currency: str) -> Handoff | None:
    """The hand-off of the account's debt in `currency`, or None when it is not with the legal team."""
    state = ledger.get(*state_key(account_id, currency)) or {}
    if state.get("status") != "legal" or not state.get("case_id"):
        return None
    return Handoff(
        case_id=state["case_id"],
        at=datetime.fromisoformat(state["handed_over_at"]),
        open=state.get("handoff") == HANDOFF_OPEN,
        owner=state.get("owner"),
    )


def take_over_handoff(
    ledger: Ledger, account_id: str, currency: str, dead_owner: str | None, successor: str
) -> bool:
    """Give an unfinished hand-off whose execution ended (the scan found it closed) to `successor`."""
    held = "#owner = :dead" if dead_owner else "attribute_not_exists(#owner)"
    values: dict[str, Any] = {":legal": "legal", ":open": HANDOFF_OPEN, ":next": successor}
    if dead_owner:
        values[":dead"] = dead_owner
    return ledger.update(
        state_key(account_id, currency),
        condition=f"#status = :legal AND #handoff = :open AND {held}",
        UpdateExpression="SET #owner = :next",
        ExpressionAttributeNames={"#owner": "owner", "#status": "status", "#handoff": "handoff"},
        ExpressionAttributeValues=values,
    )


def finish_handoff(ledger: Ledger, account_id: str, currency: str, owner: str, case_id: str) -> bool:
    return ledger.update(
        state_key(account_id, currency),
        condition="#owner = :me AND case_id = :case",
        UpdateExpression="SET #handoff = :done REMOVE #owner",
        ExpressionAttributeNames={"#owner": "owner", "#handoff": "handoff"},
        ExpressionAttributeValues={":me": owner, ":case": case_id, ":done": HANDOFF_DONE},
    )


def log(
    ledger: Ledger, account_id: str, at: datetime, entries: Iterable[LogEntry | Event], seq: int = 0
) -> None:
    """Append to the contact log; `seq` orders entries logged at the same instant by different steps."""
    events = [
        entry
        if isinstance(entry, Event)
        else Event(at, entry.type, account_id, entry.data, identity=entry.identity, seq=seq + index)
        for index, entry in enumerate(entries)
    ]
    if events:
        ledger.append_events(events)


# --- notice records (the send's idempotency) ------------------------------------------------------------


FAILED = "failed"
UNCONFIRMED = "unconfirmed"
SENDING = "sending"
SENT = "sent"


def begin_send(
    ledger: Ledger,
    account_id: str,
    currency: str,
    episode: int,
    stage: str,
    at: datetime,
    archive_key: str,
    notice: dict[str, Any] | None = None,
) -> bool:
    """Reserve (account, episode, stage) before handing the message to SES; False if already reserved.

    `notice` is what the message says (invoices, amount, recipients, eml): kept with the reservation so
    that an attempt that never finished can still be reported in full. Only a reservation whose attempt SES
    refused (`failed`) can be taken again, and only by one attempt: the conditional write flips it to
    `sending` atomically."""
    fields: dict[str, Any] = {
        "kind": "notice",
        "account_id": account_id,
        "currency": currency,
        "episode": episode,
        "stage": stage,
        "status": "sending",
        "started_at": rfc3339(at),
        "archive_key": archive_key,
        "notice": notice or {},
    }
    return ledger.update(
        notice_key(account_id, currency, episode, stage),
        condition="attribute_not_exists(PK) OR #status = :failed",
        UpdateExpression="SET "
        + ", ".join(f"#{name} = :{name}" for name in fields)
        + " ADD attempts :one REMOVE #error, #reason",
        ExpressionAttributeNames={
            **{f"#{name}": name for name in fields},
            "#error": "error",
            "#reason": "reason",
        },
        ExpressionAttributeValues={
            **{f":{name}": value for name, value in fields.items()},
            ":failed": FAILED,
            ":one": 1,
        },
    )


def logged_event(ledger: Ledger, account_id: str, at: datetime, entry: LogEntry) -> dict[str, Any] | None:
    """The event `entry` as `log` would have stored it at `at`, if it was stored."""
    item = ledger.get(
        account_pk(account_id), event_sk(Event(at, entry.type, account_id, identity=entry.identity))
    )
    return plain(item["event"]) if item else None


def notice_status(
    ledger: Ledger, account_id: str, currency: str, episode: int, stage: str
) -> dict[str, Any] | None:
    return ledger.get(*notice_key(account_id, currency, episode, stage))


def finish_send(
    ledger: Ledger,
    account_id: str,
    currency: str,
    episode: int,
    stage: str,
    status: str,
    *,
    only_if: tuple[str, ...] = (),
    **fields: Any,
) -> bool:
    """Record how the attempt ended; with `only_if`, only while its status is one of those (False if not)."""
    names = {f"#{name}": name for name in fields}
    sets = ", ".join(["#status = :status", *(f"#{name} = :{name}" for name in fields)])
    expected = {f":was{index}": value for index, value in enumerate(only_if)}
    return ledger.update(
        notice_key(account_id, currency, episode, stage),
        condition=f"#status IN ({', '.join(expected)})" if expected else None,
        UpdateExpression=f"SET {sets}",
        ExpressionAttributeNames={"#status": "status", **names},
        ExpressionAttributeValues={
            ":status": status,
            **expected,
            **{f":{name}": value for name, value in fields.items()},
        },
    )


def notice_identity(currency: str, episode: int, stage: str) -> str:
    return f"{currency}#{episode}#{stage}"


def sent_entry(currency: str, episode: int, stage: str, notice: dict[str, Any], message_id: str) -> LogEntry:
    """The notice_sent event of (currency, episode, stage): one identity, whoever logs it (the send or its
    Send event), so that it is stored once."""
    return LogEntry(
        EventType.NOTICE_SENT,
        notice_identity(currency, episode, stage),
        {**said(notice), "message_id": message_id},
    )


def said(notice: dict[str, Any]) -> dict[str, Any]:
    """What a stored notice said, as the contact log tells it (its charge lines are the ladder's own)."""
    return {key: value for key, value in notice.items() if key != "charge_lines"}


def confirm_sent(
    ledger: Ledger, account_id: str, currency: str, episode: int, stage: str, message_id: str, at: datetime
) -> bool:
    """SES reports it accepted this notice (its Send event). An attempt whose answer was lost (`sending` or
    `unconfirmed`) becomes what a successful one makes: notice_sent logged at the attempt's own time, then
    the reservation `sent`; `notice_confirmed` says that it was settled this way. False if nothing was
    waiting for this confirmation."""
    item = notice_status(ledger, account_id, currency, episode, stage)
    if item is None or item.get("status") not in (SENDING, UNCONFIRMED) or not item.get("notice"):
        return False
    was = item["status"]
    notice = plain(item["notice"])
    started = datetime.fromisoformat(str(item["started_at"]))
    log(ledger, account_id, started, [sent_entry(currency, episode, stage, notice, message_id)])
    if not finish_send(
        ledger,
        account_id,
        currency,
        episode,
        stage,
        SENT,
        only_if=(SENDING, UNCONFIRMED),
        message_id=message_id,
        recipients=len(notice.get("to", [])),
    ):
        return False
    if was == UNCONFIRMED:
        data = {"stage": stage, "message_id": message_id, "eml": notice.get("eml", "")}
        identity = notice_identity(currency, episode, stage)
        log(ledger, account_id, at, [LogEntry(EventType.NOTICE_CONFIRMED, identity, data)])
    return True


def cancel_send(ledger: Ledger, account_id: str, currency: str, episode: int, stage: str) -> None:
    """SES refused the message outright (throttled): nothing went out, so the reservation is dropped and a
    retry may send."""
    ledger.delete(
        notice_key(account_id, currency, episode, stage),
        condition="#status = :sending",
        ExpressionAttributeNames={"#status": "status"},
        ExpressionAttributeValues={":sending": "sending"},
    )
