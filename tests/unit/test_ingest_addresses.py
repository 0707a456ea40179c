"""Ingest keeps only addresses SES can send to: IDN domains in punycode, ASCII local parts (CONTRACT 2)."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from dunning.domain.models import AccountProfile, problems_from

PROFILE: dict[str, Any] = {
    "account_id": "ACME",
    "customer_name": "Acme",
    "locale": "en",
    "timezone": "UTC",
}


def _emails(value: str) -> tuple[str, ...]:
    return AccountProfile.model_validate({**PROFILE, "customer_email": value}).emails


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("ivan@пример.рф", ("ivan@xn--e1afmkfd.xn--p1ai",)),
        ("Ivan@Пример.РФ", ("Ivan@xn--e1afmkfd.xn--p1ai",)),
        ("ap@bücher.example; ar@bücher.example", ("ap@xn--bcher-kva.example", "ar@xn--bcher-kva.example")),
        ("ap@acme.example.com", ("ap@acme.example.com",)),
        ("AP@Acme.Example.COM", ("AP@acme.example.com",)),
        ("ivan@пример.рф; ivan@xn--e1afmkfd.xn--p1ai", ("ivan@xn--e1afmkfd.xn--p1ai",)),
    ],
)
def test_an_idn_domain_is_stored_in_punycode(given: str, stored: tuple[str, ...]) -> None:
    assert _emails(given) == stored
    assert all(address.isascii() for address in _emails(given))


@pytest.mark.parametrize(
    "address", ["jürgen@example.de", "иван@пример.рф", "ap@acme.example.com; 李@example.cn"]
)
def test_a_non_ascii_local_part_rejects_the_row_with_the_reason(address: str) -> None:
    with pytest.raises(ValidationError) as caught:
        AccountProfile.model_validate({**PROFILE, "customer_email": address})
    (problem,) = problems_from(caught.value, AccountProfile)
    assert problem.field == "customer_email"
    assert problem.message.startswith("SES cannot send to a non-ASCII address (local part): ")


def test_other_bad_addresses_are_reported_as_before() -> None:
    with pytest.raises(ValidationError) as caught:
        AccountProfile.model_validate({**PROFILE, "customer_email": "accounts at acme"})
    (problem,) = problems_from(caught.value, AccountProfile)
    assert "not a valid email address" in problem.message
