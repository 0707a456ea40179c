"""Shared fixtures: every test runs against moto (no network), with the stack built from the template."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import aws_xray_sdk.core  # type: ignore[import-untyped]  # noqa: F401 - opens its (unused) UDP emitter socket now, before sockets are blocked
import pytest

from dunning.adapters.ledger import Ledger
from dunning.local.embedded_aws import EmbeddedAws, embedded_aws

UPLOADED_AT = datetime(2027, 1, 15, 8, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _no_real_aws(monkeypatch: pytest.MonkeyPatch) -> None:
    """Credentials that can reach nothing real, in case anything escapes moto."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    monkeypatch.delenv("AWS_PROFILE", raising=False)


@pytest.fixture
def aws() -> Iterator[EmbeddedAws]:
    with embedded_aws() as stack:
        yield stack


@pytest.fixture
def ledger(aws: EmbeddedAws) -> Ledger:
    return Ledger(aws.dynamodb, aws.table_name)
