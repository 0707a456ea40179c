"""Names built from an account id: one slug rule for all of them.

An account id is free text from the accounting export; the names below must be safe in Step Functions
execution names, case ids and file names. Each is the slug (readable, possibly shared by two ids) plus a
digest of the exact id (which keeps two ids with one slug apart). The outputs are stored and shown (case
ids, archived notice names), so they must never change.
"""

from __future__ import annotations

import hashlib
import re
from datetime import date, datetime

_UNSAFE = re.compile(r"[^A-Za-z0-9]+")
SLUG_LENGTH = 40


def slug(account_id: str) -> str:
    """The account id with every run of characters outside [A-Za-z0-9] made one `-`, trimmed, at most 40
    characters; "account" when nothing is left."""
    return _UNSAFE.sub("-", account_id).strip("-")[:SLUG_LENGTH] or "account"


def _digest(text: str, length: int) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def execution_name(account_id: str, currency: str, anchor_due: str, anchor_invoice: str) -> str:
    """Step Functions names: at most 80 of [A-Za-z0-9-_], unique per account, currency (one ladder each)
    and earliest due invoice."""
    digest = _digest(f"{account_id}\x1f{currency}\x1f{anchor_invoice}", 10)
    return f"{slug(account_id)}-{currency}-{anchor_due.replace('-', '')}-{digest}"


def daily_execution_name(account_id: str, currency: str, day: date) -> str:
    """The name of the execution the daily scan of `day` starts for one ladder: a scan run again that day
    (or retried) starts nothing twice, since Step Functions refuses a second execution of one name."""
    digest = _digest(f"{account_id}\x1f{currency}", 10)
    return f"{slug(account_id)}-{currency}-d{day.strftime('%Y%m%d')}-{digest}"


def case_id_for(account_id: str, currency: str, episode: int) -> str:
    """One case per account, currency and episode (CONTRACT 6: one case covers one currency)."""
    return f"CASE-{slug(account_id)}-{_digest(account_id, 6)}-{currency}-{episode}"


def eml_name(at: datetime, account_id: str, currency: str, stage: str) -> str:
    """File name of a sent notice: lexical order is send order (UTC time first); the currency keeps two
    ladders of one account that send in the same second apart."""
    stamp = at.strftime("%Y%m%dT%H%M%SZ")
    return f"{stamp}-{slug(account_id)}-{_digest(account_id, 6)}-{currency}-{stage}.eml"
