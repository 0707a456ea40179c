"""Building upload files for tests."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from typing import Any

from dunning.ingest.formats import INVOICE_REQUIRED
from dunning.local.embedded_aws import EmbeddedAws

INVOICE_HEADER = INVOICE_REQUIRED


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


def reject_report(aws: EmbeddedAws, file_name: str) -> list[dict[str, str]]:
    """The rows of the reject report the ingest wrote for `file_name`."""
    key = f"rejected/{file_name}.errors.csv"
    body = aws.s3.get_object(Bucket=aws.bucket, Key=key)["Body"].read().decode()
    return list(csv.DictReader(io.StringIO(body)))


def s3_notification(bucket: str, encoded_key: str) -> dict[str, Any]:
    """An S3 event notification (as S3 sends it straight to Lambda) for one created object."""
    return {
        "Records": [
            {
                "eventVersion": "2.1",
                "eventSource": "aws:s3",
                "awsRegion": "eu-west-1",
                "eventTime": "2027-01-15T08:00:00.000Z",
                "eventName": "ObjectCreated:Put",
                "userIdentity": {"principalId": "X"},
                "requestParameters": {"sourceIPAddress": "127.0.0.1"},
                "responseElements": {"x-amz-request-id": "R1", "x-amz-id-2": "I2"},
                "s3": {
                    "s3SchemaVersion": "1.0",
                    "configurationId": "c",
                    "bucket": {
                        "name": bucket,
                        "ownerIdentity": {"principalId": "X"},
                        "arn": f"arn:aws:s3:::{bucket}",
                    },
                    "object": {"key": encoded_key, "size": 1, "eTag": "e", "sequencer": "1"},
                },
            }
        ]
    }
