"""The embedded SES refuses what SES v2 refuses, with SES's error codes (CONTRACT 2)."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from dunning.local.embedded_ses import MAX_RAW_MESSAGE_BYTES, Refusal, embedded_ses, refusal

REGION = "eu-west-1"
RAW = (
    b"From: =?utf-8?q?Fa=C3=A7turi_SRL?= <billing@example.com>\r\n"
    b"To: =?utf-8?b?0JDQvdC90LA=?= <anna@xn--e1afmkfd.xn--p1ai>\r\n"
    b"Subject: Invoice\r\n\r\nHello\r\n"
)


def _request(**changes: Any) -> dict[str, Any]:
    request: dict[str, Any] = {
        "FromEmailAddress": "=?utf-8?q?Fa=C3=A7turi_SRL?= <billing@example.com>",
        "Destination": {"ToAddresses": ["anna@xn--e1afmkfd.xn--p1ai"]},
        "Content": {"Raw": {"Data": RAW}},
        "ConfigurationSetName": "notices",
    }
    request.update(changes)
    return request


def _check(
    request: dict[str, Any], *, sandbox: bool = False, identities: tuple[str, ...] = ()
) -> Refusal | None:
    return refusal(
        request,
        identities=("example.com", *identities),
        configuration_sets=("notices",),
        region=REGION,
        sandbox=sandbox,
    )


def test_an_ascii_encoded_message_from_a_verified_domain_is_accepted() -> None:
    assert _check(_request()) is None


@pytest.mark.parametrize(
    ("field", "value", "words"),
    [
        ("FromEmailAddress", "billing@façturi.example", "Domain contains illegal character"),
        ("FromEmailAddress", "Façturi SRL <billing@example.com>", "Display name contains"),
        ("FromEmailAddress", "jürgen@example.com", "Local address contains illegal character"),
    ],
)
def test_a_non_ascii_sender_is_a_bad_request(field: str, value: str, words: str) -> None:
    refused = _check(_request(**{field: value}))
    assert refused is not None and refused.code == "BadRequestException" and refused.status == 400
    assert words in refused.message and value in refused.message


@pytest.mark.parametrize("key", ["ToAddresses", "CcAddresses", "BccAddresses"])
@pytest.mark.parametrize("address", ["ivan@пример.рф", "jürgen@example.de", "Анна <anna@example.ru>"])
def test_a_non_ascii_recipient_is_a_bad_request(key: str, address: str) -> None:
    refused = _check(_request(Destination={key: [address]}))
    assert refused is not None and refused.code == "BadRequestException"
    assert f"Destination.{key}" in refused.message


def test_a_non_ascii_reply_to_is_a_bad_request() -> None:
    refused = _check(_request(ReplyToAddresses=["ar@façturi.example"]))
    assert refused is not None and "ReplyToAddresses" in refused.message


@pytest.mark.parametrize("header", ["From", "To", "Cc", "Bcc", "Reply-To"])
def test_a_raw_header_with_an_unencoded_name_or_address_is_rejected(header: str) -> None:
    raw = RAW.replace(b"Subject:", f"{header}: Fa\u00e7turi SRL <x@example.com>\r\nSubject:".encode())
    refused = _check(_request(Content={"Raw": {"Data": raw}}))
    assert refused is not None and refused.code == "MessageRejected"
    assert f"header {header}" in refused.message and "Display name" in refused.message


def test_a_raw_header_with_8bit_bytes_is_rejected() -> None:
    raw = RAW.replace(b"anna@xn--e1afmkfd.xn--p1ai", "anna@пример.рф".encode())
    refused = _check(_request(Content={"Raw": {"Data": raw}}))
    assert refused is not None and refused.code == "MessageRejected" and "header To" in refused.message


def test_the_40_mb_limit_counts_the_base64_encoded_size() -> None:
    fits = MAX_RAW_MESSAGE_BYTES // 4 * 3  # exactly 40 MB once base64-encoded
    assert _check(_request(Content={"Raw": {"Data": RAW + b"x" * (fits - len(RAW))}})) is None
    refused = _check(_request(Content={"Raw": {"Data": RAW + b"x" * (fits - len(RAW) + 1)}}))
    assert refused is not None and refused.code == "BadRequestException"
    assert (
        refused.message == f"Message length is more than 41943040 bytes long: '{MAX_RAW_MESSAGE_BYTES + 4}'."
    )


def test_a_sender_no_identity_covers_is_rejected_as_ses_words_it() -> None:
    refused = _check(_request(FromEmailAddress="Billing <billing@other.example>"))
    assert refused == Refusal(
        "MessageRejected",
        "Email address is not verified. The following identities failed the check in region EU-WEST-1: "
        "billing@other.example",
    )
    assert (
        _check(_request(FromEmailAddress="billing@other.example"), identities=("BILLING@other.example",))
        is None
    )


def test_without_a_from_address_the_raw_from_header_must_be_verified() -> None:
    request = _request()
    del request["FromEmailAddress"]
    assert _check(request) is None
    raw = RAW.replace(b"billing@example.com", b"billing@other.example")
    refused = _check({**request, "Content": {"Raw": {"Data": raw}}})
    assert refused is not None and "billing@other.example" in refused.message


def test_configuration_set_missing_or_unknown() -> None:
    request = _request()
    del request["ConfigurationSetName"]
    missing = _check(request)
    assert missing is not None and missing.code == "BadRequestException"
    unknown = _check(_request(ConfigurationSetName="nope"))
    assert unknown == Refusal("NotFoundException", "Configuration set <nope> does not exist.", 404)


def test_the_sandbox_refuses_every_unverified_recipient() -> None:
    request = _request(
        Destination={"ToAddresses": ["a@x.example", "b@y.example"], "CcAddresses": ["c@ok.example"]}
    )
    refused = _check(request, sandbox=True, identities=("ok.example", "b@y.example"))
    assert refused is not None and refused.code == "MessageRejected"
    assert refused.message.endswith("in region EU-WEST-1: a@x.example")
    assert _check(request, sandbox=True, identities=("x.example", "b@y.example", "ok.example")) is None
    assert _check(request) is None, "outside the sandbox anyone may be mailed"


def test_the_sandbox_reads_the_raw_headers_when_there_is_no_destination() -> None:
    request = _request()
    del request["Destination"]
    refused = _check(request, sandbox=True)
    assert refused is not None and "anna@xn--e1afmkfd.xn--p1ai" in refused.message


# --- through moto and botocore, as the functions see it ----------------------------------------------------


@pytest.fixture
def sesv2() -> Iterator[Any]:
    from moto import mock_aws

    with mock_aws(), embedded_ses(REGION, "123456789012", sandbox=True):
        client = boto3.client("sesv2", region_name=REGION)
        client.create_email_identity(EmailIdentity="example.com")
        client.create_configuration_set(ConfigurationSetName="notices")
        yield client


def test_a_refusal_reaches_the_caller_as_the_client_error_ses_returns(sesv2: Any) -> None:
    with pytest.raises(ClientError) as caught:
        sesv2.send_email(**_request())
    error = caught.value.response
    assert error["Error"]["Code"] == "MessageRejected"
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert "failed the check in region EU-WEST-1: anna@xn--e1afmkfd.xn--p1ai" in error["Error"]["Message"]
    assert isinstance(caught.value, sesv2.exceptions.MessageRejected)

    with pytest.raises(sesv2.exceptions.NotFoundException):
        sesv2.send_email(**_request(ConfigurationSetName="nope"))


def test_an_accepted_message_is_sent_by_moto(sesv2: Any) -> None:
    sesv2.create_email_identity(EmailIdentity="anna@xn--e1afmkfd.xn--p1ai")
    assert sesv2.send_email(**_request())["MessageId"]


def test_raw_data_is_measured_on_the_wire() -> None:
    encoded = base64.b64encode(RAW).decode()
    assert _check(_request(Content={"Raw": {"Data": encoded}})) is None
