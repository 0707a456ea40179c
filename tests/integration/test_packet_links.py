"""Links to case packets: SigV4 on the regional endpoint, never stated to outlive the credentials that signed
them, and never written to a log or an archived copy."""

from __future__ import annotations

import email
import email.policy
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs, urlsplit

import boto3
import pytest
from moto import mock_aws

from dunning.adapters.ledger import Ledger
from dunning.adapters.links import AssumedRoleLinkSigner, signed_at
from dunning.adapters.storage import ObjectStore, S3Archive, S3Documents
from dunning.domain.policy import Policy
from dunning.local.embedded_aws import LEGAL_BUCKET, EmbeddedAws
from dunning.ports import PacketLink
from dunning.runtime.wiring import ledger_books
from dunning.services import legal
from dunning.services.legal import WITHHELD, Case, LegalDesk, link_expiry_text
from tests.support.files import invoice_row, invoices_csv

REGION = "eu-central-1"
SIGNER_ROLE = "arn:aws:iam::123456789012:role/dunning-PacketLinkSignerRole"


class _RecordingSts:
    """STS, keeping the credentials it handed out."""

    def __init__(self, sts: Any) -> None:
        self._sts = sts
        self.calls: list[dict[str, Any]] = []

    def assume_role(self, **kwargs: Any) -> Any:
        response = self._sts.assume_role(**kwargs)
        self.calls.append({"request": kwargs, "credentials": response["Credentials"]})
        return response


@pytest.fixture
def sts() -> Iterator[_RecordingSts]:
    with mock_aws():
        yield _RecordingSts(boto3.client("sts", region_name=REGION))


@pytest.mark.parametrize("hours", [1, 72, 168])
def test_a_link_is_sigv4_on_the_regional_endpoint_and_dies_no_later_than_its_credentials(
    sts: _RecordingSts, hours: int
) -> None:
    link = AssumedRoleLinkSigner(sts, SIGNER_ROLE, REGION)("dunning-legal", "cases/C-1.zip", hours * 3600)

    url = urlsplit(link.url)
    query = {name: values[0] for name, values in parse_qs(url.query).items()}
    assert (url.scheme, url.netloc, url.path) == (
        "https",
        f"dunning-legal.s3.{REGION}.amazonaws.com",
        "/cases/C-1.zip",
    )
    assert query["X-Amz-Algorithm"] == "AWS4-HMAC-SHA256"
    assert query["X-Amz-Credential"].endswith(f"/{REGION}/s3/aws4_request")
    assert "X-Amz-Security-Token" in query, "signed with the assumed session, not the function's own keys"
    assert "Signature" not in query and "AWSAccessKeyId" not in query, "no SigV2"

    (call,) = sts.calls
    assert call["request"]["RoleArn"] == SIGNER_ROLE
    assert call["request"]["DurationSeconds"] == min(hours * 3600, 3600), "role chaining caps it at an hour"
    credentials = call["credentials"]
    assert query["X-Amz-Credential"].startswith(credentials["AccessKeyId"] + "/")
    expiration = credentials["Expiration"]
    expiration = expiration if expiration.tzinfo else expiration.replace(tzinfo=UTC)
    expires = signed_at(link.url) + timedelta(seconds=int(query["X-Amz-Expires"]))
    assert int(query["X-Amz-Expires"]) <= hours * 3600
    assert link.expires_at == expires, "the stated expiry is the URL's own"
    assert expires <= expiration, "never stated to outlive the credentials that signed it"
    assert expires > datetime.now(UTC) + timedelta(minutes=50)


def test_the_email_states_the_links_exact_expiry_and_the_cli_fallback(sts: _RecordingSts) -> None:
    link = AssumedRoleLinkSigner(sts, SIGNER_ROLE, REGION)("dunning-legal", "cases/C-1.zip", 72 * 3600)
    policy = Policy(business_timezone="Europe/Bucharest")
    rendered = legal._legal_email(policy, _case(), _Snapshot(), link, "opened")  # type: ignore[arg-type]
    stated = link_expiry_text(link.expires_at, "Europe/Bucharest")
    local = link.expires_at.astimezone(__import__("zoneinfo").ZoneInfo("Europe/Bucharest"))
    assert f"{link.expires_at:%Y-%m-%d %H:%M} UTC" in stated and f"{local:%H:%M} Europe/Bucharest" in stated
    assert f"this link works until {stated}" in rendered.text
    assert link.url in rendered.text
    assert "dunning cases download C-1" in rendered.text
    assert "72 hours" not in rendered.text


class _Snapshot:
    def __init__(self) -> None:
        self.account_id = "ACME"
        self.profile = {"customer_name": "Acme Ltd"}


def _case() -> Case:
    return Case(
        case_id="C-1",
        account_id="ACME",
        status="open",
        created_at="2027-01-01T00:00:00Z",
        amount_due=Decimal("100.00"),
        currency="EUR",
        balance=Decimal("100.00"),
        packet_key="cases/C-1.zip",
        packet_sha256="0" * 64,
        packet_bytes=1,
        updated_at="2027-01-01T00:00:00Z",
    )


SECRET_URL = (
    f"https://{LEGAL_BUCKET}.s3.eu-west-1.amazonaws.com/cases/C-1.zip?X-Amz-Algorithm=AWS4-HMAC-SHA256"
    "&X-Amz-Credential=ASIASECRETKEY%2F20270101%2Feu-west-1%2Fs3%2Faws4_request&X-Amz-Signature=5ec2e7"
)


class _Mailer:
    def __init__(self) -> None:
        self.sent: list[bytes] = []

    def send(self, sender: str, to: Any, raw: bytes, account_id: str | None = None) -> str:
        self.sent.append(raw)
        return f"message-{len(self.sent)}"


def _text(raw: bytes) -> str:
    message = email.message_from_bytes(raw, policy=email.policy.default)
    return "\n".join(
        str(part.get_content()) for part in message.walk() if part.get_content_maintype() == "text"
    )


def test_the_link_is_never_in_the_archived_copy_nor_in_the_logs(
    aws: EmbeddedAws, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    aws.upload("invoices", "inv.csv", invoices_csv(invoice_row("A-1", amount="100.00")))
    ledger = Ledger(aws.dynamodb, aws.table_name)
    store = ObjectStore(aws.s3)
    mailer = _Mailer()
    expires = aws.now() + timedelta(hours=1)
    books = ledger_books(ledger)
    desk = LegalDesk(
        books=books,
        store=store,
        ingest_bucket=aws.bucket,
        legal_bucket=LEGAL_BUCKET,
        archive=S3Archive(store, aws.bucket),
        documents=S3Documents(store, ledger),
        mailer=mailer,
        policy=Policy(),
        presign=lambda bucket, key, seconds: PacketLink(SECRET_URL, expires),
        legal_email="legal@example.com",
    )
    caplog.set_level(logging.DEBUG)
    legal._notify(desk, _case(), books.ladders.load("ACME"), aws.now(), "opened")

    (sent,) = mailer.sent
    assert SECRET_URL in _text(sent), "the legal team gets the link"
    (event,) = [e for e in ledger.events("ACME") if e["type"] == "legal_notified"]
    archived = aws.s3.get_object(Bucket=aws.bucket, Key=f"notices/{event['eml']}")["Body"].read()
    assert "X-Amz-Signature" not in _text(archived) and b"ASIASECRETKEY" not in archived
    assert WITHHELD in _text(archived)
    assert "dunning cases download C-1" in _text(archived)
    assert link_expiry_text(expires, "UTC") in _text(archived), "the copy still says until when it worked"
    assert "ASIASECRETKEY" not in str(event)
    logged = capsys.readouterr()
    for output in (logged.out, logged.err, caplog.text):
        assert "ASIASECRETKEY" not in output and "X-Amz-Signature" not in output
