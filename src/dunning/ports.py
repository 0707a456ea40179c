"""The interfaces the services and the ingest need from the outside world, and the values and errors that
cross them.

Services take their collaborators as these Protocols; adapters (DynamoDB, S3, SES, Step Functions) implement
them, the composition root (dunning.runtime.wiring) hands the adapters over, and tests pass the in-memory
fakes of tests/support/fakes.py (tests/integration/test_port_contracts.py holds both to the same cases).
Nothing here talks to AWS.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import IO, Any, Protocol

from dunning.domain.account import AccountSnapshot
from dunning.domain.events import Event
from dunning.domain.ladder import LogEntry
from dunning.domain.notices import NoticeId

# A stored record as plain data: numbers as int (or str for fractions), the record's own fields by name.
Record = dict[str, Any]

# --- the workflow's records: one ladder per (account, currency) ------------------------------------------


@dataclass(frozen=True)
class Handoff:
    """An account with the legal team: its case, when it was handed over, and who is finishing it."""

    case_id: str
    at: datetime  # the hand-off instant: every retry dates the case (and its case_opened) by it
    open: bool
    owner: str | None


@dataclass(frozen=True)
class Waking:
    """A ladder the `wake` index says needs a look before a given instant."""

    account_id: str
    currency: str
    # When it asked to be woken (None: as soon as possible, as an upload asks).
    wake_at: datetime | None = None


@dataclass(frozen=True)
class DueEntry:
    """One open invoice in the due index."""

    account_id: str
    currency: str
    invoice_id: str
    due_on: str


class Ladders(Protocol):
    """Who walks each ladder, where it stands, and the reservation of every notice (the send's idempotency).

    Every method that changes a record is a conditional write: False (nothing changed) when its condition
    does not hold, so that two executions can never walk one ladder or send one notice twice."""

    def load(self, account_id: str, currency: str | None = None) -> AccountSnapshot:
        """The account as stored; with `currency`, the view of that currency's ladder."""
        ...

    def claim(
        self, account_id: str, currency: str, owner: str, now: datetime, episode: int, lease_until: datetime
    ) -> bool:
        """Make `owner` walk this ladder until `lease_until` (a claim again extends it); False if another
        execution holds an unexpired lease or the ladder is with legal. An owner whose lease ran out died
        without letting go: its ladder is taken over."""
        ...

    def sleep(
        self,
        account_id: str,
        currency: str,
        owner: str,
        wake_at: datetime,
        touched: int,
        holding: str | None = None,
    ) -> bool:
        """`owner` lets go of the ladder until `wake_at` (into the `wake` index); False if it no longer owns
        it, or an upload changed the ladder (`touched` moved on) since it was read: decide again."""
        ...

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
        """`owner` is done with the ladder: settled (its next episode starts afresh) or failed. It leaves
        the `wake` index, unless `look_again` (the next scan then looks at it). False as for `sleep`;
        `touched` None: whatever uploads did meanwhile."""
        ...

    def rest_with_legal(self, account_id: str, currency: str) -> None:
        """A ladder whose hand-off is finished leaves the `wake` index (an upload may have put it back)."""
        ...

    def pass_on(self, account_id: str, currency: str, owner: str, successor: str) -> bool:
        """Give the ladder `owner` walks to `successor` (a fresh execution continuing it)."""
        ...

    def mark_legal(self, account_id: str, currency: str, owner: str, case_id: str, now: datetime) -> bool: ...

    def handoff(self, account_id: str, currency: str) -> Handoff | None: ...

    def claim_handoff(
        self, account_id: str, currency: str, owner: str, now: datetime, lease_until: datetime
    ) -> bool:
        """Make `owner` finish an unfinished hand-off: one nobody holds, or whose holder's lease ran out."""
        ...

    def finish_handoff(self, account_id: str, currency: str, owner: str, case_id: str) -> bool: ...

    def wake_shards(self) -> int:
        """How many shards the `wake` index has (the daily scan reads them in parallel)."""
        ...

    def waking_page(
        self, shard: int, before: datetime, cursor: str | None, limit: int
    ) -> tuple[list[Waking], str | None]:
        """At most `limit` ladders of one shard of the `wake` index that need a look before `before`,
        from `cursor` on (None: the first); and the cursor of the next page (None: no more)."""
        ...

    def wake_soon(self, account_id: str, currency: str) -> None:
        """Have the next scan look at this ladder (something it chases changed)."""
        ...

    def wake_index_built(self) -> bool:
        """Whether the `wake` index holds every ladder (stacks from before it: see services.scan)."""
        ...

    def mark_wake_index_built(self) -> None: ...

    def due_through(self, through: date) -> Iterator[DueEntry]:
        """Every open invoice due on or before `through`, from the due index."""
        ...

    def leave_due_index(self, account_id: str, currency: str) -> None:
        """Take the account's invoices in `currency` out of the due index (unless re-imported meanwhile)."""
        ...

    def record_task(self, notice: NoticeId, at: datetime, task_id: str) -> bool:
        """The rung `notice` names is a task for a person, created at `at`: done for the ladder. False if the
        rung has a record already (the task was recorded, or the stage was a notice)."""
        ...

    def begin_send(
        self, notice: NoticeId, at: datetime, archive_key: str, said: Mapping[str, Any] | None = None
    ) -> bool:
        """Reserve the notice before SES gets it, with what it `said`; False if it is reserved (only a
        `failed` one is taken again, by one attempt)."""
        ...

    def notice_status(self, notice: NoticeId) -> Record | None: ...

    def finish_send(
        self, notice: NoticeId, status: str, *, only_if: tuple[str, ...] = (), **fields: Any
    ) -> bool:
        """Record how the attempt ended; with `only_if`, only while its status is one of those."""
        ...

    def cancel_send(self, notice: NoticeId) -> None:
        """Drop a reservation still `sending` (SES took nothing: a retry may send)."""
        ...


class ContactLog(Protocol):
    """The account's contact log (CONTRACT 5): appended to, never changed; an event is stored once."""

    def log(self, account_id: str, at: datetime, entries: Iterable[LogEntry | Event], seq: int = 0) -> None:
        """Append; `seq` orders entries logged at the same instant by different steps."""
        ...

    def logged_event(self, account_id: str, at: datetime, entry: LogEntry, seq: int = 0) -> Record | None:
        """The event `entry` as `log` would have stored it at `at`, if it was stored."""
        ...

    def events(self, account_id: str) -> list[Record]: ...


class CaseRecords(Protocol):
    """The legal team's cases, one record each (`case_id` names it)."""

    def case(self, case_id: str) -> Record | None: ...

    def cases(self) -> list[Record]: ...

    def add_case(self, record: Mapping[str, Any]) -> bool:
        """Store a new case; False when one with its `case_id` exists."""
        ...

    def update_case(
        self, case_id: str, fields: Mapping[str, Any], *, when: tuple[str | None, ...] | None = None
    ) -> bool:
        """Set `fields` (None removes one); with `when`, only while its notify_status is one of those
        (None: not set)."""
        ...


class Suppressions(Protocol):
    """Addresses never mailed again, and the delivery reports that put them there."""

    def suppress(self, address: str, fields: Mapping[str, Any], at: str) -> bool:
        """Suppress `address` (normalized); False when it is, unless it was lifted before `at`."""
        ...

    def suppressed(self, addresses: Iterable[str]) -> set[str]:
        """Which of `addresses` (as given) are suppressed and not lifted."""
        ...

    def lift(self, address: str, at: str) -> bool:
        """Mark a suppression lifted; False when the address is not suppressed."""
        ...

    def add_report(self, record: Mapping[str, Any]) -> bool:
        """Keep a delivery report (message_id, reason, address name it); False when it is kept already."""
        ...

    def report(self, message_id: str, reason: str, address: str) -> Record | None: ...


# --- Step Functions ---------------------------------------------------------------------------------------


class Workflows(Protocol):
    """The deployed state machine's executions, by name."""

    def start(self, name: str, payload: dict[str, Any]) -> bool:
        """Start an execution; False when one with this name already exists."""
        ...


class ScanPages(Protocol):
    """The queue of the daily scan's pages (one message per shard page; a page that fails is retried)."""

    def send(self, page: Mapping[str, Any]) -> None: ...

    def send_all(self, pages: Sequence[Mapping[str, Any]]) -> None:
        """Every page, in as few requests as the queue takes (all are queued, or this raises)."""
        ...


class Executions(Protocol):
    def start(self, state_machine_arn: str, name: str, payload: dict[str, Any]) -> None: ...


# --- objects (S3) -----------------------------------------------------------------------------------------


class Objects(Protocol):
    def put(self, bucket: str, key: str, body: Any, content_type: str) -> None: ...

    def read(self, bucket: str, key: str) -> bytes: ...


# --- metrics the alarms watch -------------------------------------------------------------------------------


# The custom metrics the stack's alarms watch (infra/template.yaml has one alarm each).
# A notice that could not be sent: SES refused it (an unverified sender, sending paused, a rejected message).
NOTICE_FAILED = "NoticeFailed"
# SES may have accepted a notice whose answer was lost (or whose attempt died after reserving it): it is not
# sent again, and a person must check it (`notice_unconfirmed` in the contact log).
NOTICE_UNCONFIRMED = "NoticeUnconfirmed"
# An execution ended in RecordFailure: a step kept failing after its retries (the contact log has
# `workflow_failed`; the account is picked up again by the next day's scan).
WORKFLOW_FAILED = "WorkflowFailed"
# Statutory interest was due for days the reference-rate table has no rate for (before its first half-year
# or after its last): those days were left out of the notice or case (`charges_incomplete`), never guessed.
MISSING_REFERENCE_RATE = "MissingReferenceRate"


class Counter(Protocol):
    def count(self, name: str, value: int = 1) -> None:
        """Add `value` to the custom metric `name` (dunning.adapters.metrics names them)."""
        ...


# --- sending email -------------------------------------------------------------------------------------


class Pacer(Protocol):
    """The account's SES sending rate, shared by every send at once (a bucket per second)."""

    def admit(self, at: datetime) -> bool:
        """Take one send of the second `at` falls in; False when that second's are all taken."""
        ...


class SendThrottled(Exception):
    """SES asked us to slow down (or failed transiently); nothing was sent. The state machine retries."""


class SendRejected(Exception):
    """SES refused this message for good (e.g. a malformed address); retrying would not help."""


class SendUnconfirmed(Exception):
    """The request reached SES but its answer was lost: SES may or may not have accepted the message."""


class Mailer(Protocol):
    def send(self, sender: str, to: Sequence[str], raw: bytes, account_id: str | None = None) -> str:
        """Hand the raw message to SES: SES's message id, or SendThrottled, SendRejected, SendUnconfirmed."""
        ...


class Archive(Protocol):
    def put(self, key: str, raw: bytes) -> None: ...


class Documents(Protocol):
    def invoice_pdf(self, account_id: str, document: str | None, invoice_id: str) -> tuple[str, bytes] | None:
        """(file name, bytes) of the invoice's uploaded PDF, if there is one bound to `account_id`'s invoice
        (invoice ids are unique only per account: never another account's document)."""
        ...


# --- the legal team's packet link --------------------------------------------------------------------


@dataclass(frozen=True)
class PacketLink:
    """A download link and the instant it stops working. A secret link (a presigned URL) is a credential:
    it goes to the legal team only, never into a log or an archived copy."""

    url: str
    expires_at: datetime
    secret: bool = True


# (bucket, key, seconds wanted) -> the link; its stated expiry may be sooner than wanted, never later.
PacketLinkSigner = Callable[[str, str, int], PacketLink]


# --- the account an SES message belongs to (its tag) -------------------------------------------------

ACCOUNT_TAG = "account_id"
# SES tag values allow only ASCII letters, digits, '_' and '-', at most 256 of them; account ids are free
# text, so the tag carries them base32-encoded (A-Z, 2-7) behind this marker.
_TAG_MARK = "b32-"


def account_tag(account_id: str) -> str | None:
    """The SES tag value naming `account_id`, or None when the id is too long to fit in a tag."""
    encoded = base64.b32encode(account_id.encode("utf-8")).decode("ascii").rstrip("=")
    value = _TAG_MARK + encoded
    return value if len(value) <= 256 else None


def account_from_tag(value: str) -> str:
    if not value.startswith(_TAG_MARK):
        return value  # a plain id (tags written by hand, or by an older version)
    encoded = value[len(_TAG_MARK) :]
    return base64.b32decode(encoded + "=" * (-len(encoded) % 8)).decode("utf-8")


# --- the services' records, one port each -----------------------------------------------------------------


@dataclass(frozen=True)
class Books:
    """What the services keep: deployed, all in the ledger table (dunning.adapters); in tests, in memory."""

    ladders: Ladders
    log: ContactLog
    cases: CaseRecords
    suppressions: Suppressions
    counter: Counter


# --- ingest ----------------------------------------------------------------------------------------------
#
# What dunning.ingest needs: the uploaded objects (S3) and the ledger their rows are recorded in (DynamoDB).

# A ledger record as ingest writes and reads it: the attributes dunning.domain.account reads (numbers as
# Decimal, as stored). Ingest builds them (dunning.ingest.records); the ledger keys and indexes them. A record
# read back may carry the stored item's own attributes too: pass it back as it is.
StoredRecord = dict[str, Any]
# A new invoice: its record, and whether it goes in the due index.
NewInvoice = tuple[StoredRecord, bool]
# A document claim: (account_id, file name), the account's invoices look for that document.
Claim = tuple[str, str]


class ObjectGone(LookupError):
    """The object named by an S3 event no longer exists (deleted, or an old event re-delivered)."""


@dataclass(frozen=True)
class StoredObject:
    bucket: str
    key: str
    etag: str
    uploaded_at: datetime
    version_id: str | None = None

    @property
    def file_name(self) -> str:
        return self.key.rsplit("/", 1)[-1]

    @property
    def revision(self) -> str:
        """What distinguishes this upload from another upload under the same key."""
        return self.version_id if self.version_id and self.version_id != "null" else self.etag.strip('"')


# Invoice PDFs are uploaded under DOCUMENTS_PREFIX (dunning.adapters.storage has the rule of whose they are).
DOCUMENTS_PREFIX = "incoming/documents/"


def document_name(document: str | None, invoice_id: str) -> str:
    """The file name an invoice's PDF is looked for under."""
    return document or f"{invoice_id}.pdf"


def document_account(key: str) -> str | None:
    """The account of an upload under incoming/documents/<account_id>/<file>; None directly under
    incoming/documents/."""
    folder = key.removeprefix(DOCUMENTS_PREFIX).rpartition("/")[0]
    return folder or None


class UploadStore(Protocol):
    """The ingest bucket as the ingest reads an upload and writes (or removes) its reject report."""

    def open(self, obj: StoredObject) -> IO[bytes]:
        """The upload's bytes (ObjectGone when it no longer exists)."""
        ...

    def put(self, bucket: str, key: str, body: IO[bytes] | bytes, content_type: str) -> None: ...

    def exists(self, bucket: str, key: str) -> bool: ...

    def delete(self, bucket: str, key: str) -> None: ...


class PolicyFiles(Protocol):
    """The ingest bucket as an uploaded policy is checked and put in force (dunning.ingest.policy_upload)."""

    def read_if_changed(self, bucket: str, key: str, etag: str | None) -> tuple[bytes, str] | None:
        """The object's bytes and ETag, or None while its ETag is still `etag` (ObjectGone: no object)."""
        ...

    def put(self, bucket: str, key: str, body: IO[bytes] | bytes, content_type: str) -> None: ...

    def delete(self, bucket: str, key: str) -> None: ...

    def list(self, bucket: str, prefix: str) -> list[tuple[str, str]]:
        """(key, etag) of every object under `prefix`."""
        ...


class IngestLedger(Protocol):
    """The ledger as ingest records uploads in it: invoices, credit notes, account profiles, payments (and
    their references by payment_id), actions, documents, the contact log and one receipt per upload.

    Names are the domain's: an invoice is (account_id, invoice_id), a credit note (account_id,
    credit_note_id), a payment reference (account_id, payment_id), and a payment record is one `entry` of its
    invoice (its id among that invoice's payments). A record carries the ids that name it. The due index
    holds the invoices the daily scan reads. A conditional write answers False, writing nothing, when its
    condition does not hold: the entry exists, or the record it replaces changed since it was read."""

    # --- the upload

    def ingested(self, source: StoredObject) -> bool:
        """This version of the upload was ingested already (its receipt is recorded)."""
        ...

    def record_ingested(self, source: StoredObject, receipt: StoredRecord) -> None: ...

    def append_events(self, events: Iterable[Event]) -> None: ...

    # --- invoices, credit notes and account profiles

    def invoices(self, ids: Iterable[tuple[str, str]]) -> dict[tuple[str, str], StoredRecord]:
        """The stored invoices among `ids`, by (account_id, invoice_id)."""
        ...

    def invoice(self, account_id: str, invoice_id: str) -> StoredRecord | None: ...

    def add_invoices(
        self, invoices: Sequence[NewInvoice], profiles: Sequence[StoredRecord], claims: Sequence[Claim]
    ) -> None:
        """Write new invoices (each with whether it goes in the due index), account profiles and document
        claims ((account_id, file name): the account's invoices look for that document), unconditionally."""
        ...

    def replace_invoice(self, invoice: StoredRecord, *, due: bool, replacing: StoredRecord) -> bool:
        """Overwrite the invoice `replacing` (as read), in the due index or not; False when it changed."""
        ...

    def credit_notes(self, ids: Iterable[tuple[str, str]]) -> dict[tuple[str, str], StoredRecord]:
        """The stored credit notes among `ids`, by (account_id, credit_note_id)."""
        ...

    def credit_note(self, account_id: str, credit_note_id: str) -> StoredRecord | None: ...

    def put_credit_note(self, note: StoredRecord, replacing: StoredRecord | None) -> bool:
        """Write a new credit note (`replacing` None: False when one exists) or overwrite `replacing`."""
        ...

    def account_invoices(self, account_id: str) -> list[StoredRecord]: ...

    def account(self, account_id: str) -> AccountSnapshot:
        """The account as stored (every currency): what an action row is checked against."""
        ...

    def wake_ladders(self, account_id: str) -> None:
        """The next scan looks at each of the account's ladders (an action for them to act on)."""
        ...

    def wake_held(self, account_ids: Iterable[str]) -> None:
        """The next scan looks at those of these accounts' ladders that a promise or plan holds (a payment
        may keep it, or pay an instalment)."""
        ...

    def account_tasks(self, account_id: str) -> list[StoredRecord]:
        """The account's rungs that were tasks for a person (NOTICE records with status `task`)."""
        ...

    def account_credit_notes(self, account_id: str) -> list[StoredRecord]: ...

    # --- payments

    def payments(self, account_id: str, invoice_id: str) -> dict[str, StoredRecord]:
        """The invoice's payment records (counting or reversed), by entry."""
        ...

    def account_payments(self, account_id: str) -> dict[tuple[str, str], StoredRecord]:
        """The account's payment records (counting or reversed), by (invoice_id, entry)."""
        ...

    def payment(self, account_id: str, invoice_id: str, entry: str) -> StoredRecord | None: ...

    def add_payment(self, entry: str, payment: StoredRecord) -> bool:
        """Write a payment as `entry` of its invoice; False when the entry exists."""
        ...

    def put_payments(self, payments: Sequence[tuple[str, StoredRecord]]) -> None:
        """Write payments, each as (entry, record) of its invoice, unconditionally."""
        ...

    def reverse_payment(
        self, account_id: str, invoice_id: str, entry: str, *, amount: Decimal, at: str, by: str
    ) -> bool:
        """The payment stops counting: its record stays, as kind `reversed_payment` with amount 0 and the
        `amount` it had as `reversed_amount` (at `at`, by `by`). False when it did not count (any more)."""
        ...

    def payment_refs(self, ids: Iterable[tuple[str, str]]) -> dict[tuple[str, str], StoredRecord]:
        """The stored payment references among `ids`, by (account_id, payment_id)."""
        ...

    def payment_ref(self, account_id: str, payment_id: str) -> StoredRecord | None: ...

    def put_payment_ref(self, ref: StoredRecord, replacing: StoredRecord | None) -> bool:
        """Write a new payment reference (`replacing` None: False when one exists), or overwrite
        `replacing`."""
        ...

    def ladder_states(self, account_id: str) -> list[StoredRecord]:
        """The state of each of the account's ladders (one per currency; one for all, kept before that)."""
        ...

    def in_due_index(self, invoice: StoredRecord) -> bool:
        """The invoice record (as read) is in the due index."""
        ...

    def set_due(self, invoice: StoredRecord, due: bool) -> StoredRecord | None:
        """Put the invoice in the due index or take it out, unless it was re-imported since it was read
        (None); the record as it now stands."""
        ...

    # --- actions and documents

    def known(
        self, accounts: Iterable[str], invoices: Iterable[tuple[str, str]]
    ) -> tuple[set[str], set[tuple[str, str]]]:
        """Which of `accounts` have a profile, and which of the (account_id, invoice_id) `invoices` exist."""
        ...

    def add_action(self, action_id: str, action: StoredRecord) -> bool:
        """Write an action of the account; False when one with its date and `action_id` exists."""
        ...

    def document_claimants(self, file_name: str) -> set[str]:
        """The accounts whose invoices look for the document `file_name`."""
        ...

    def record_document(self, document: StoredRecord, account_id: str | None) -> None:
        """Record an uploaded invoice PDF: `account_id`'s, or (None) of the one account that claims it."""
        ...
