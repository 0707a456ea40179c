"""Building upload files for tests."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence

INVOICE_HEADER = (
    "invoice_id",
    "account_id",
    "customer_name",
    "customer_email",
    "currency",
    "amount",
    "issued_on",
    "due_on",
)


def csv_bytes(header: Sequence[str], rows: Iterable[Sequence[object]]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue().encode("utf-8")


def invoice_row(
    invoice_id: str = "INV-1",
    account_id: str = "ACME",
    amount: str = "100.00",
    currency: str = "EUR",
    due_on: str = "2027-01-31",
    **extra: str,
) -> dict[str, str]:
    return {
        "invoice_id": invoice_id,
        "account_id": account_id,
        "customer_name": f"{account_id} Ltd",
        "customer_email": f"ap@{account_id.lower()}.example.com",
        "currency": currency,
        "amount": amount,
        "issued_on": "2027-01-01",
        "due_on": due_on,
        **extra,
    }


def invoices_csv(*rows: dict[str, str]) -> bytes:
    header = list(INVOICE_HEADER)
    for row in rows:
        header += [key for key in row if key not in header]
    return csv_bytes(header, ([row.get(column, "") for column in header] for row in rows))
