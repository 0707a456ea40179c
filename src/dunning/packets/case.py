"""A legal case as the packet tells it: what the escalate function gathers, and the packet's file names."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from dunning.domain.account import InvoiceState
from dunning.domain.charges import ChargeLine
from dunning.domain.models import strip_bidi_controls
from dunning.notices.pdf_layout import clean_line
from dunning.notices.render import Business

MANIFEST = "manifest.json"
README = "README.txt"
SUMMARY = "case_summary.pdf"
STATEMENT = "statement_of_account.csv"
CONTACT_LOG = "contact_log.jsonl"
POLICY = "policy.json"
STATEMENT_COLUMNS = ("date", "type", "invoice_id", "description", "debit", "credit", "balance", "currency")
FORMAT_VERSION = 1

# The summary and the statement are for the legal team, in English whatever the customer's language; en is
# formatted the British way by render (15 March 2027, €1,280.50).
SUMMARY_LOCALE = "en"


def clean(text: str) -> str:
    """A field of the customer's or the log's on one clean line. Unlike a notice, the summary's own words
    never need a direction mark, so the LRM, RLM and Arabic letter mark go too: rows imported before ingest
    stripped bidi controls may still hold them."""
    return clean_line(strip_bidi_controls(text))


@dataclass(frozen=True)
class CaseFile:
    """Everything a packet holds, gathered by the caller (the escalate function) from the ledger and S3."""

    case_id: str
    account_id: str
    created_at: datetime  # aware; the hand-off instant
    currency: str
    amount_due: Decimal  # outstanding principal at hand-off (the case currency's invoices)
    charges: tuple[ChargeLine, ...]  # fees and interest to the hand-off date
    customer: Mapping[str, Any]  # the account profile: customer_name, emails, country, customer_type...
    business: Business
    invoices: tuple[InvoiceState, ...]  # the invoices in the case
    events: tuple[Mapping[str, Any], ...]  # the account's contact log, CONTRACT 5 objects, in time order
    # (eml file name, the exact bytes SES received), send order. Any sequence: the hand-off passes one that
    # reads each notice from S3 only when it is written into the zip, so memory does not grow with them.
    notices: Sequence[tuple[str, bytes]]
    documents: Mapping[str, tuple[str, bytes]]  # invoice_id -> (uploaded file name, bytes)
    policy_json: str  # the policy in force, as JSON text
    disputes: tuple[Mapping[str, Any], ...] = ()  # optional extra detail for the summary
    # Interest that keeps running after the hand-off, per day (the claim states it; zero when none runs).
    daily_interest: Decimal = Decimal(0)
    # The day the claim is computed to (the customer's local date of the hand-off); None: created_at's UTC
    # date.
    claimed_on: date | None = None

    @property
    def as_of(self) -> date:
        return self.claimed_on or self.created_at.astimezone(UTC).date()

    @property
    def total_charges(self) -> Decimal:
        """The fees and interest claimed: the charges in the case currency."""
        return sum((c.amount for c in self.charges if c.currency == self.currency), Decimal(0))


def utc_stamp(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def plain(value: object) -> str:
    """Any value from the profile or the log as one clean line: hostile text stays text."""
    if value is None:
        return ""
    if isinstance(value, list | tuple | set | frozenset):
        return ", ".join(plain(item) for item in value)
    return clean(str(value))
