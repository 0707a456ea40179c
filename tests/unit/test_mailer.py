"""SES errors are sorted into 'retry later' (nothing was sent) and 'give up' (this message never will be)."""

from __future__ import annotations

import boto3
import pytest
from botocore.stub import Stubber

from dunning.mailer import SesMailer
from dunning.sending import SendRejected, SendThrottled


@pytest.fixture
def ses() -> object:
    return boto3.client("sesv2", region_name="eu-west-1")


def test_a_raw_message_goes_out_with_the_configuration_set(ses: object) -> None:
    with Stubber(ses) as stub:
        stub.add_response(
            "send_email",
            {"MessageId": "m-1"},
            {
                "FromEmailAddress": "ar@x.example",
                "Destination": {"ToAddresses": ["a@b.example"]},
                "Content": {"Raw": {"Data": b"raw"}},
                "ConfigurationSetName": "notices",
            },
        )
        assert SesMailer(ses, "notices").send("ar@x.example", ["a@b.example"], b"raw") == "m-1"


@pytest.mark.parametrize("code", ["TooManyRequestsException", "LimitExceededException", "InternalFailure"])
def test_throttling_and_outages_are_retryable(ses: object, code: str) -> None:
    with Stubber(ses) as stub:
        stub.add_client_error("send_email", service_error_code=code, http_status_code=429)
        with pytest.raises(SendThrottled):
            SesMailer(ses).send("ar@x.example", ["a@b.example"], b"raw")


@pytest.mark.parametrize(
    "code", ["MessageRejected", "MailFromDomainNotVerifiedException", "BadRequestException"]
)
def test_a_refused_message_is_not_retried(ses: object, code: str) -> None:
    with Stubber(ses) as stub:
        stub.add_client_error("send_email", service_error_code=code, http_status_code=400)
        with pytest.raises(SendRejected, match=code):
            SesMailer(ses).send("ar@x.example", ["a@b.example"], b"raw")
