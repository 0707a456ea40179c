"""dunning: collections automation on AWS (invoice ledger, escalation ladder, notices, legal hand-off)."""

__version__ = "0.1.0"
