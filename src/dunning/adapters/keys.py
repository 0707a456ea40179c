"""The ledger table's key schema: every partition key, sort key and key prefix, in one place.

docs/data-model.md describes the keys and the access pattern each one serves. In short:

    PK = ACCOUNT#<account_id>   SK = PROFILE | INVOICE#<id> | PAYMENT#<invoice>#<id> | ACTION#<on>#<id>
                                     | EVENT#<at>#<seq>#<id> | PAYMENTREF#<payment_id> | CREDITNOTE#<number>
                                     | STATE#<currency> | NOTICE#<currency>#<episode>#<stage>
                                     | STATE, NOTICE#<episode>#<stage> (kept before ladders were per
                                       currency; still read)
    PK = DOCUMENT#<file name>   SK = DOCUMENT | ACCOUNT#<account_id> | CLAIM#<account_id>
    PK = FILE#<object key>      SK = RECEIPT#<version or etag>
    PK = CASES                  SK = <case_id>
    PK = SUPPRESSED#<address>   SK = SUPPRESSED
    PK = DELIVERY#<message id>  SK = <reason>#<address>
    PK = PACE                   SK = <second, UTC>  (the SES pacer's sends in that second; expire after a day)
    GSI `due`: due_pk = DUE#<shard>, due_sk = <due_on>#<account_id>#<invoice_id>
    GSI `wake`: wake_pk = WAKE#<shard>, wake_sk = <wake instant, UTC>#<account_id>#<currency> (STATE items:
                the ladders that sleep until that instant; the daily scan reads only those due before the
                next scan; an upload that changes what a ladder chases sets it to WAKE_SOON)

Stored items are read back by these strings: never change one.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime
from typing import Any

from dunning.domain.events import Event

# Account partition.
ACCOUNT_PREFIX = "ACCOUNT#"
PROFILE_SK = "PROFILE"
INVOICE_PREFIX = "INVOICE#"
PAYMENT_PREFIX = "PAYMENT#"
PAYMENT_REF_PREFIX = "PAYMENTREF#"
CREDIT_NOTE_PREFIX = "CREDITNOTE#"
ACTION_PREFIX = "ACTION#"
EVENT_PREFIX = "EVENT#"
STATE_PREFIX = "STATE#"
# The one state item of an account before ladders were per currency (still read: it seeds each currency's).
LEGACY_STATE_SK = "STATE"
NOTICE_PREFIX = "NOTICE#"

# Documents (invoice PDFs uploaded under incoming/documents/).
DOCUMENT_PREFIX = "DOCUMENT#"
UNBOUND_DOCUMENT_SK = "DOCUMENT"
CLAIM_PREFIX = "CLAIM#"

# Import receipts (one per source object version).
FILE_PREFIX = "FILE#"
RECEIPT_PREFIX = "RECEIPT#"

# Legal cases.
CASES_PK = "CASES"

# Suppression list and delivery reports.
SUPPRESSED_PREFIX = "SUPPRESSED#"
SUPPRESSED_SK = "SUPPRESSED"
DELIVERY_PREFIX = "DELIVERY#"

# The sparse `due` index the daily scan reads.
DUE_INDEX = "due"
DUE_SHARDS = 16
DUE_PREFIX = "DUE#"
# The sparse `wake` index of the ladders' STATE items: when each sleeping ladder next needs a look.
WAKE_INDEX = "wake"
WAKE_PREFIX = "WAKE#"
# Sorts before every instant: "at the next scan", written by an upload that changed what the ladder chases.
WAKE_SOON = "0000-00-00T00:00:00Z"
# The SES pacer's buckets, one per second: PK = PACE, SK = <second, UTC>.
PACE_PK = "PACE"
# Written once the wake index holds every ladder (services.scan builds it on a stack from before it).
WAKE_INDEX_MARKER = ("META", "WAKE_INDEX")


def account_pk(account_id: str) -> str:
    return f"{ACCOUNT_PREFIX}{account_id}"


def account_of(pk: str) -> str:
    """The account id of an ACCOUNT# partition key."""
    return pk.removeprefix(ACCOUNT_PREFIX)


def invoice_sk(invoice_id: str) -> str:
    return f"{INVOICE_PREFIX}{invoice_id}"


def invoice_of(sk: str) -> str:
    """The invoice id of an INVOICE# sort key."""
    return sk.removeprefix(INVOICE_PREFIX)


def payment_sk(invoice_id: str, payment_id: str) -> str:
    return f"{payment_prefix(invoice_id)}{payment_id}"


def payment_prefix(invoice_id: str) -> str:
    return f"{PAYMENT_PREFIX}{invoice_id}#"


def payment_ref_sk(payment_id: str) -> str:
    """Where a payment that carries the payer's payment_id is recorded: its invoice, content and state."""
    return f"{PAYMENT_REF_PREFIX}{payment_id}"


def credit_note_sk(credit_note_id: str) -> str:
    """A credit note from the accounting export (its remainder is a credit on the account)."""
    return f"{CREDIT_NOTE_PREFIX}{credit_note_id}"


def action_sk(on: date, action_id: str) -> str:
    return f"{ACTION_PREFIX}{on.isoformat()}#{action_id}"


def event_sk(event: Event) -> str:
    # Fixed-width UTC time first, so that the sort key orders the log by time, then by sequence.
    stamp = event.at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")
    return f"{EVENT_PREFIX}{stamp}#{event.seq:010d}#{event.event_id}"


def state_sk(currency: str) -> str:
    return f"{STATE_PREFIX}{currency}"


def state_key(account_id: str, currency: str) -> tuple[str, str]:
    return account_pk(account_id), state_sk(currency)


def notice_key(account_id: str, currency: str, episode: int, stage: str) -> tuple[str, str]:
    return account_pk(account_id), f"{NOTICE_PREFIX}{currency}#{episode:05d}#{stage}"


def document_pk(file_name: str) -> str:
    return f"{DOCUMENT_PREFIX}{file_name}"


def bound_document_sk(account_id: str) -> str:
    return account_pk(account_id)


def claim_sk(account_id: str) -> str:
    return f"{CLAIM_PREFIX}{account_id}"


def claimants(items: Iterable[Mapping[str, Any]]) -> set[str]:
    """The accounts whose invoices look for a document, from the items of its DOCUMENT# partition."""
    return {item["SK"].removeprefix(CLAIM_PREFIX) for item in items if item["SK"].startswith(CLAIM_PREFIX)}


def receipt_key(object_key: str, revision: str) -> tuple[str, str]:
    """The import receipt of one version of a source object."""
    return f"{FILE_PREFIX}{object_key}", f"{RECEIPT_PREFIX}{revision}"


def suppressed_key(normalized_address: str) -> tuple[str, str]:
    return f"{SUPPRESSED_PREFIX}{normalized_address}", SUPPRESSED_SK


def delivery_report_key(message_id: str, reason: str, normalized_address: str) -> tuple[str, str]:
    return f"{DELIVERY_PREFIX}{message_id}", f"{reason}#{normalized_address}"


def due_pk(shard: int) -> str:
    return f"{DUE_PREFIX}{shard:02d}"


def due_shard(account_id: str) -> str:
    return due_pk(_shard(account_id))


def _shard(account_id: str) -> int:
    return hashlib.sha256(account_id.encode()).digest()[0] % DUE_SHARDS


def wake_keys(account_id: str, currency: str, wake_at: str) -> dict[str, Any]:
    """The sparse-index attributes of a sleeping ladder (`wake_at`: an RFC 3339 UTC instant or WAKE_SOON);
    an account's ladders share its due shard."""
    return {
        "wake_pk": f"{WAKE_PREFIX}{_shard(account_id):02d}",
        "wake_sk": f"{wake_at}#{account_id}#{currency}",
    }


def waking_from(wake_sk: str) -> tuple[str, str, datetime | None]:
    """The account, currency and wake instant (None: WAKE_SOON) a wake_sk names."""
    instant, rest = wake_sk.split("#", 1)
    account_id, currency = rest.rsplit("#", 1)
    return account_id, currency, None if instant == WAKE_SOON else datetime.fromisoformat(instant)


def wake_pk(shard: int) -> str:
    return f"{WAKE_PREFIX}{shard:02d}"


def wake_sk_before(instant: str) -> str:
    """The upper bound (exclusive) of the wake_sk of every ladder waking before `instant` (RFC 3339 UTC)."""
    return f"{instant}#"


def due_keys(account_id: str, invoice_id: str, due_on: date) -> dict[str, Any]:
    """The sparse-index attributes of a chaseable invoice (all invoices of an account share a shard)."""
    return {"due_pk": due_shard(account_id), "due_sk": f"{due_on.isoformat()}#{account_id}#{invoice_id}"}


def due_sk_through(through: date) -> str:
    """The upper bound of the due_sk of every invoice due on or before `through`."""
    return f"{through.isoformat()}#\uffff"
