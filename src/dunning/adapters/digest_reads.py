"""What the daily digest reads (services.digest), by keys only (no Scan in a deployed function): the accounts
that owe something (every shard of the sparse `due` index), each account's partition once (its events and
the items of its snapshot), and the digests' own log (the DIGEST_ACCOUNT partition).

An account that owes nothing has no task to work (the worklist drops it), so its events are not read; a
failure on an account that has since paid in full is not in the digest (it is in the contact log, and the
alarms report failures as they happen)."""

from __future__ import annotations

from typing import Any

from dunning.adapters.keys import DUE_INDEX, DUE_SHARDS, EVENT_PREFIX, account_of, account_pk, due_pk
from dunning.adapters.ledger import Item, Ledger, plain
from dunning.domain.account import AccountSnapshot

# Sorts after every due_sk (<due_on>#<account_id>#<invoice_id>): every invoice in the index.
_EVERY_DUE_DATE = "\uffff"


class DigestReads:
    def __init__(self, ledger: Ledger, digest_account: str) -> None:
        self._ledger = ledger
        self._digest_account = digest_account
        self._items: dict[str, list[Item]] = {}

    def owing_accounts(self) -> list[str]:
        accounts = {
            account_of(str(item["PK"]))
            for shard in range(DUE_SHARDS)
            for item in self._ledger.query_index(due_pk(shard), _EVERY_DUE_DATE, DUE_INDEX)
        }
        return sorted(accounts)

    def events(self) -> list[dict[str, Any]]:
        """The owing accounts' events and the digests' own, in time order (as Ledger.all_events orders)."""
        event_items = [
            item
            for account_id in self.owing_accounts()
            for item in self._account_items(account_id)
            if str(item["SK"]).startswith(EVENT_PREFIX)
        ]
        event_items += self._ledger.query_partition(account_pk(self._digest_account), EVENT_PREFIX)
        event_items.sort(key=lambda item: (item["SK"][:32], item["PK"], item["SK"]))
        return [plain(item["event"]) for item in event_items]

    def snapshot(self, account_id: str, currency: str | None) -> AccountSnapshot:
        return AccountSnapshot.from_items(account_id, self._account_items(account_id), currency)

    def _account_items(self, account_id: str) -> list[Item]:
        if account_id not in self._items:
            self._items[account_id] = self._ledger.account_items(account_id)
        return self._items[account_id]
