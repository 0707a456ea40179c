"""SES errors are sorted by what they prove: 'retry later' (nothing was accepted), 'give up' (this message
never will be) and 'unconfirmed' (SES may have it: never send it again)."""

from __future__ import annotations

import boto3
import pytest
from botocore.exceptions import ConnectionClosedError, EndpointConnectionError, ReadTimeoutError
from botocore.stub import Stubber

from dunning.adapters.mailer import NO_RETRIES, SesMailer
from dunning.ports import SendRejected, SendThrottled, SendUnconfirmed


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


@pytest.mark.parametrize(
    "code", ["TooManyRequestsException", "LimitExceededException", "SendingPausedException"]
)
def test_throttling_and_paused_sending_are_retryable(ses: object, code: str) -> None:
    with Stubber(ses) as stub:
        stub.add_client_error("send_email", service_error_code=code, http_status_code=429)
        with pytest.raises(SendThrottled):
            SesMailer(ses).send("ar@x.example", ["a@b.example"], b"raw")


@pytest.mark.parametrize(
    ("code", "status"), [("InternalFailure", 500), ("ServiceUnavailable", 503), ("Whatever", 502)]
)
def test_a_server_error_proves_nothing_and_is_never_retried(ses: object, code: str, status: int) -> None:
    # SES may have accepted the message before failing to answer: sending again could duplicate it.
    with Stubber(ses) as stub:
        stub.add_client_error("send_email", service_error_code=code, http_status_code=status)
        with pytest.raises(SendUnconfirmed):
            SesMailer(ses).send("ar@x.example", ["a@b.example"], b"raw")


class _Failing:
    def __init__(self, error: Exception) -> None:
        self.error = error

    def send_email(self, **_: object) -> dict[str, str]:
        raise self.error


@pytest.mark.parametrize(
    "error",
    [
        ReadTimeoutError(endpoint_url="https://email.eu-west-1.amazonaws.com"),
        ConnectionClosedError(endpoint_url="https://email.eu-west-1.amazonaws.com"),
    ],
)
def test_a_lost_answer_is_unconfirmed(error: Exception) -> None:
    with pytest.raises(SendUnconfirmed):
        SesMailer(_Failing(error)).send("ar@x.example", ["a@b.example"], b"raw")


def test_a_connection_that_never_opened_is_retryable() -> None:
    error = EndpointConnectionError(endpoint_url="https://email.eu-west-1.amazonaws.com")
    with pytest.raises(SendThrottled):
        SesMailer(_Failing(error)).send("ar@x.example", ["a@b.example"], b"raw")


def test_the_ses_client_never_retries_by_itself() -> None:
    # botocore's retries would resend a message whose answer was lost, behind the reservation's back.
    client = boto3.client("sesv2", region_name="eu-west-1", config=NO_RETRIES)
    assert client.meta.config.retries["total_max_attempts"] == 1


@pytest.mark.parametrize(
    "code", ["MessageRejected", "MailFromDomainNotVerifiedException", "BadRequestException"]
)
def test_a_refused_message_is_not_retried(ses: object, code: str) -> None:
    with Stubber(ses) as stub:
        stub.add_client_error("send_email", service_error_code=code, http_status_code=400)
        with pytest.raises(SendRejected, match=code):
            SesMailer(ses).send("ar@x.example", ["a@b.example"], b"raw")
