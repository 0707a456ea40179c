"""The workflow's records in the ledger table (ports.Ladders, ports.ContactLog): who is walking an account
up the ladder, which episode it is in, which notices of that episode have been (or are being) sent, and the
account's contact log.

    STATE item   PK = ACCOUNT#<id>, SK = STATE#<currency>                 episode, status (idle|active|legal),
                                                                           owner; legal: case_id,
                                                                           handed_over_at, handoff
    NOTICE item  PK = ACCOUNT#<id>, SK = NOTICE#<currency>#<episode>#<stage>  status (sending|sent|
                                                                           unconfirmed|skipped|failed),
                                                                           attempts, message_id, recipients

One ladder per currency (CONTRACT 7): an account owing in two currencies is walked twice, each walk with its
own state, episodes, notices and case. Records kept before that (SK = STATE, NOTICE#<episode>#<stage>) are
still read: the old state seeds each currency's, an old notice counts for the currency it demanded.

Every change is one conditional UpdateItem (or DeleteItem), so two executions can never walk one account,
or reserve one notice, at the same time. tests/support/fakes.py holds the in-memory twin, and
tests/integration/test_port_contracts.py runs the same cases against both.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from datetime import date, datetime
from typing import Any

from dunning.adapters.keys import (
    DUE_SHARDS,
    INVOICE_PREFIX,
    WAKE_INDEX,
    WAKE_INDEX_MARKER,
    WAKE_SOON,
    account_pk,
    due_pk,
    due_sk_through,
    event_sk,
    notice_key,
    state_key,
    wake_keys,
    wake_pk,
    wake_sk_before,
    waking_from,
)
from dunning.adapters.ledger import Ledger, plain
from dunning.domain.account import TASK, AccountSnapshot
from dunning.domain.clock import rfc3339
from dunning.domain.events import Event
from dunning.domain.ladder import LogEntry
from dunning.domain.notices import FAILED, SENDING, NoticeId
from dunning.ports import DueEntry, Handoff, Record, Waking

# The hand-off's own progress on the STATE item: `open` from mark_legal until every part of it is done
# (packet, case record, case_opened, the legal team's email), then `done`. Accounts handed over before this
# field existed have none and count as done.
HANDOFF_OPEN = "open"
HANDOFF_DONE = "done"

_OWNER_STATUS = {"#owner": "owner", "#status": "status"}
# Nobody holds the ladder, or `:me` does, or its holder's lease ran out (its execution died without letting
# go). A record from before leases (an owner, no lease) waits for its owner: that execution is still live.
_CLAIMABLE = "attribute_not_exists(#owner) OR #owner = :me OR lease_until < :now"
# No upload changed the ladder since the execution read it (`touched` counts the uploads that did).
_UNTOUCHED = "(attribute_not_exists(touched) OR touched = :seen)"


def wake_ladder_soon(ledger: Ledger, account_id: str, currency: str) -> None:
    """Something the ladder chases changed (an invoice entered the due index): the next scan looks at it,
    and an execution that read it before the change decides again instead of sleeping on what it read."""
    wake = wake_keys(account_id, currency, WAKE_SOON)
    ledger.update(
        state_key(account_id, currency),
        UpdateExpression="SET kind = :kind, account_id = :account, currency = :currency, "
        "wake_pk = :wake_pk, wake_sk = :wake_sk ADD touched :one",
        ExpressionAttributeValues={
            ":kind": "state",
            ":account": account_id,
            ":currency": currency,
            ":wake_pk": wake["wake_pk"],
            ":wake_sk": wake["wake_sk"],
            ":one": 1,
        },
    )


def _notice_key(notice: NoticeId) -> tuple[str, str]:
    return notice_key(notice.account_id, notice.currency, notice.episode, notice.stage)


class DynamoLadders:
    def __init__(self, ledger: Ledger) -> None:
        self._ledger = ledger

    def load(self, account_id: str, currency: str | None = None) -> AccountSnapshot:
        return AccountSnapshot.from_items(account_id, self._ledger.account_items(account_id), currency)

    def _update_state(
        self, account_id: str, currency: str, condition: str, expression: str, **kw: Any
    ) -> bool:
        return self._ledger.update(
            state_key(account_id, currency), condition=condition, UpdateExpression=expression, **kw
        )

    def claim(
        self, account_id: str, currency: str, owner: str, now: datetime, episode: int, lease_until: datetime
    ) -> bool:
        return self._update_state(
            account_id,
            currency,
            f"({_CLAIMABLE}) AND (attribute_not_exists(#status) OR #status <> :legal)",
            "SET #owner = :me, #status = :active, kind = :kind, account_id = :account, "
            "currency = :currency, episode = if_not_exists(episode, :episode), lease_until = :lease, "
            "claimed_at = if_not_exists(claimed_at, :now)",
            ExpressionAttributeNames=_OWNER_STATUS,
            ExpressionAttributeValues={
                ":me": owner,
                ":active": "active",
                ":legal": "legal",
                ":kind": "state",
                ":episode": episode,
                ":now": rfc3339(now),
                ":lease": rfc3339(lease_until),
                ":account": account_id,
                ":currency": currency,
            },
        )

    def sleep(
        self,
        account_id: str,
        currency: str,
        owner: str,
        wake_at: datetime,
        touched: int,
        holding: str | None = None,
    ) -> bool:
        wake = wake_keys(account_id, currency, rfc3339(wake_at))
        values = {
            ":me": owner,
            ":legal": "legal",
            ":seen": touched,
            ":wake_pk": wake["wake_pk"],
            ":wake_sk": wake["wake_sk"],
        }
        # `holding`: what holds the ladder while it sleeps (a promise, a plan): a payment wakes it.
        if holding:
            update = (
                "REMOVE #owner, lease_until SET wake_pk = :wake_pk, wake_sk = :wake_sk, holding = :holding"
            )
            values[":holding"] = holding
        else:
            update = "REMOVE #owner, lease_until, holding SET wake_pk = :wake_pk, wake_sk = :wake_sk"
        return self._update_state(
            account_id,
            currency,
            f"#owner = :me AND #status <> :legal AND {_UNTOUCHED}",
            update,
            ExpressionAttributeNames=_OWNER_STATUS,
            ExpressionAttributeValues=values,
        )

    def release(
        self,
        account_id: str,
        currency: str,
        owner: str,
        *,
        settled: bool,
        touched: int | None,
        look_again: bool,
    ) -> bool:
        values: dict[str, Any] = {":me": owner, ":idle": "idle", ":legal": "legal"}
        sets = ["#status = :idle"]
        removes = ["#owner", "lease_until"]
        condition = "#owner = :me AND #status <> :legal"
        if touched is not None:
            condition += f" AND {_UNTOUCHED}"
            values[":seen"] = touched
        if look_again:  # WAKE_SOON sorts before every instant: the next scan looks at it
            wake = wake_keys(account_id, currency, WAKE_SOON)
            values |= {":wake_pk": wake["wake_pk"], ":wake_sk": wake["wake_sk"]}
            sets += ["wake_pk = :wake_pk", "wake_sk = :wake_sk"]
        else:
            removes += ["wake_pk", "wake_sk"]
        expression = f"REMOVE {', '.join(removes)} SET {', '.join(sets)}"
        if settled:
            values[":one"] = 1
            expression += ", settled_by = :me ADD episode :one"
        return self._update_state(
            account_id,
            currency,
            condition,
            expression,
            ExpressionAttributeNames=_OWNER_STATUS,
            ExpressionAttributeValues=values,
        )

    def rest_with_legal(self, account_id: str, currency: str) -> None:
        self._update_state(
            account_id,
            currency,
            "#status = :legal AND attribute_exists(wake_pk) "
            "AND (attribute_not_exists(#handoff) OR #handoff <> :open)",
            "REMOVE wake_pk, wake_sk",
            ExpressionAttributeNames={"#status": "status", "#handoff": "handoff"},
            ExpressionAttributeValues={":legal": "legal", ":open": HANDOFF_OPEN},
        )

    def pass_on(self, account_id: str, currency: str, owner: str, successor: str) -> bool:
        return self._update_state(
            account_id,
            currency,
            "#owner = :me",
            "SET #owner = :next",
            ExpressionAttributeNames={"#owner": "owner"},
            ExpressionAttributeValues={":me": owner, ":next": successor},
        )

    def mark_legal(self, account_id: str, currency: str, owner: str, case_id: str, now: datetime) -> bool:
        # The owner stays on the record until finish_handoff, so that the scan can tell a hand-off still
        # being worked on from one whose execution died half-way.
        return self._update_state(
            account_id,
            currency,
            "#owner = :me AND #status <> :legal",
            "SET #status = :legal, case_id = :case, handed_over_at = :now, #handoff = :open",
            ExpressionAttributeNames={**_OWNER_STATUS, "#handoff": "handoff"},
            ExpressionAttributeValues={
                ":me": owner,
                ":legal": "legal",
                ":case": case_id,
                ":now": rfc3339(now),
                ":open": HANDOFF_OPEN,
            },
        )

    def handoff(self, account_id: str, currency: str) -> Handoff | None:
        state = self._ledger.get(*state_key(account_id, currency)) or {}
        if state.get("status") != "legal" or not state.get("case_id"):
            return None
        return Handoff(
            case_id=state["case_id"],
            at=datetime.fromisoformat(state["handed_over_at"]),
            open=state.get("handoff") == HANDOFF_OPEN,
            owner=state.get("owner"),
        )

    def claim_handoff(
        self, account_id: str, currency: str, owner: str, now: datetime, lease_until: datetime
    ) -> bool:
        return self._update_state(
            account_id,
            currency,
            f"#status = :legal AND #handoff = :open AND ({_CLAIMABLE})",
            "SET #owner = :me, lease_until = :lease",
            ExpressionAttributeNames={**_OWNER_STATUS, "#handoff": "handoff"},
            ExpressionAttributeValues={
                ":legal": "legal",
                ":open": HANDOFF_OPEN,
                ":me": owner,
                ":now": rfc3339(now),
                ":lease": rfc3339(lease_until),
            },
        )

    def finish_handoff(self, account_id: str, currency: str, owner: str, case_id: str) -> bool:
        return self._update_state(
            account_id,
            currency,
            "#owner = :me AND case_id = :case",
            "SET #handoff = :done REMOVE #owner, lease_until, wake_pk, wake_sk",
            ExpressionAttributeNames={"#owner": "owner", "#handoff": "handoff"},
            ExpressionAttributeValues={":me": owner, ":case": case_id, ":done": HANDOFF_DONE},
        )

    def wake_shards(self) -> int:
        return DUE_SHARDS

    def waking_page(
        self, shard: int, before: datetime, cursor: str | None, limit: int
    ) -> tuple[list[Waking], str | None]:
        start = json.loads(cursor) if cursor else None
        items, last = self._ledger.index_page(
            WAKE_INDEX, wake_pk(shard), wake_sk_before(rfc3339(before)), limit, start
        )
        return [Waking(*waking_from(item["wake_sk"])) for item in items], (
            json.dumps(last, sort_keys=True) if last else None
        )

    def wake_soon(self, account_id: str, currency: str) -> None:
        wake_ladder_soon(self._ledger, account_id, currency)

    def wake_index_built(self) -> bool:
        return self._ledger.get(*WAKE_INDEX_MARKER) is not None

    def mark_wake_index_built(self) -> None:
        self._ledger.update(
            WAKE_INDEX_MARKER,
            UpdateExpression="SET kind = :kind",
            ExpressionAttributeValues={":kind": "marker"},
        )

    def due_through(self, through: date) -> Iterator[DueEntry]:
        upper = due_sk_through(through)
        for shard in range(DUE_SHARDS):
            for item in self._ledger.query_index(due_pk(shard), upper):
                yield DueEntry(item["account_id"], item["currency"], item["invoice_id"], item["due_on"])

    def leave_due_index(self, account_id: str, currency: str) -> None:
        for item in self._ledger.query_partition(account_pk(account_id), INVOICE_PREFIX):
            if "due_pk" in item and item.get("currency") == currency:
                self._ledger.drop_from_due_index(account_id, item["invoice_id"], row_hash=item["row_hash"])

    # --- notice records (the send's idempotency) --------------------------------------------------------

    def record_task(self, notice: NoticeId, at: datetime, task_id: str) -> bool:
        fields = _notice_fields(notice, TASK, at) | {"task_id": task_id}
        return self._ledger.update(
            _notice_key(notice),
            condition="attribute_not_exists(PK)",
            UpdateExpression="SET " + ", ".join(f"#{name} = :{name}" for name in fields),
            ExpressionAttributeNames={f"#{name}": name for name in fields},
            ExpressionAttributeValues={f":{name}": value for name, value in fields.items()},
        )

    def begin_send(
        self, notice: NoticeId, at: datetime, archive_key: str, said: Mapping[str, Any] | None = None
    ) -> bool:
        # `said` is what the message says (invoices, amount, recipients, eml): kept with the reservation so
        # that an attempt that never finished can still be reported in full. The conditional write flips a
        # `failed` reservation to `sending` atomically: only one attempt takes it again.
        said_fields = {"archive_key": archive_key, "notice": dict(said or {})}
        fields = _notice_fields(notice, SENDING, at) | said_fields
        return self._ledger.update(
            _notice_key(notice),
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

    def notice_status(self, notice: NoticeId) -> Record | None:
        item = self._ledger.get(*_notice_key(notice))
        return plain(item) if item is not None else None

    def finish_send(
        self, notice: NoticeId, status: str, *, only_if: tuple[str, ...] = (), **fields: Any
    ) -> bool:
        names = {f"#{name}": name for name in fields}
        sets = ", ".join(["#status = :status", *(f"#{name} = :{name}" for name in fields)])
        expected = {f":was{index}": value for index, value in enumerate(only_if)}
        return self._ledger.update(
            _notice_key(notice),
            condition=f"#status IN ({', '.join(expected)})" if expected else None,
            UpdateExpression=f"SET {sets}",
            ExpressionAttributeNames={"#status": "status", **names},
            ExpressionAttributeValues={
                ":status": status,
                **expected,
                **{f":{name}": value for name, value in fields.items()},
            },
        )

    def cancel_send(self, notice: NoticeId) -> None:
        self._ledger.delete(
            _notice_key(notice),
            condition="#status = :sending",
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues={":sending": SENDING},
        )


def _notice_fields(notice: NoticeId, status: str, at: datetime) -> dict[str, Any]:
    """What every NOTICE record of a rung holds: whose rung it is, its status, and when it began."""
    return {
        "kind": "notice",
        "account_id": notice.account_id,
        "currency": notice.currency,
        "episode": notice.episode,
        "stage": notice.stage,
        "status": status,
        "started_at": rfc3339(at),
    }


class DynamoContactLog:
    def __init__(self, ledger: Ledger) -> None:
        self._ledger = ledger

    def log(self, account_id: str, at: datetime, entries: Iterable[LogEntry | Event], seq: int = 0) -> None:
        events = [
            entry
            if isinstance(entry, Event)
            else Event(at, entry.type, account_id, entry.data, identity=entry.identity, seq=seq + index)
            for index, entry in enumerate(entries)
        ]
        if events:
            self._ledger.append_events(events)

    def logged_event(self, account_id: str, at: datetime, entry: LogEntry, seq: int = 0) -> Record | None:
        event = Event(at, entry.type, account_id, identity=entry.identity, seq=seq)
        item = self._ledger.get(account_pk(account_id), event_sk(event))
        return plain(item["event"]) if item else None

    def events(self, account_id: str) -> list[Record]:
        return self._ledger.events(account_id)
