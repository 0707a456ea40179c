"""What the commands that work on a deployed stack share: an AWS session from the user's profile, the
stack's outputs, and the user's mistakes (no profile, no credentials, no such stack) said in one line."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager

import boto3
from botocore.exceptions import ClientError, NoCredentialsError, ProfileNotFound

# AWS error codes that mean the user's credentials may not do this: said as a denial, not a failure.
DENIED_CODES = frozenset(
    {
        "AccessDenied",
        "AccessDeniedException",
        "UnauthorizedOperation",
        "ExpiredToken",
        "ExpiredTokenException",
        "InvalidClientTokenId",
        "UnrecognizedClientException",
    }
)


class StackCommandError(Exception):
    """Something the user can act on: one line on stderr, exit status 1."""


def open_stack(
    profile: str | None,
    region: str | None,
    stack: str,
    required: Iterable[str],
    error: type[StackCommandError],
) -> tuple[boto3.session.Session, dict[str, str]]:
    """A session from the user's profile and the stack's outputs (the first call that needs credentials)."""
    with credential_errors_as(error):
        session = boto3.session.Session(profile_name=profile, region_name=region)
        return session, stack_outputs(session, stack, required, error)


@contextmanager
def credential_errors_as(error: type[StackCommandError]) -> Iterator[None]:
    """A missing profile or missing credentials becomes `error` with what to do about it."""
    try:
        yield
    except ProfileNotFound as exc:
        raise error(str(exc)) from exc
    except NoCredentialsError as exc:
        raise error("no AWS credentials found: set up a profile (aws configure) or pass --profile") from exc


def stack_outputs(
    session: boto3.session.Session, stack: str, required: Iterable[str], error: type[StackCommandError]
) -> dict[str, str]:
    """The stack's outputs, with every one of `required` present; otherwise `error`, said plainly."""
    try:
        described = session.client("cloudformation").describe_stacks(StackName=stack)["Stacks"][0]
    except ClientError as exc:
        if "does not exist" in exc.response["Error"].get("Message", ""):
            region = session.region_name or "your default region"
            raise error(f"no stack named {stack} in {region}: pass --stack and --region") from exc
        raise
    outputs = {item["OutputKey"]: item["OutputValue"] for item in described.get("Outputs", [])}
    missing = sorted(set(required) - outputs.keys())
    if missing:
        raise error(
            f"stack {stack} has no {', '.join(missing)} output: is it a dunning stack of this version? "
            "(deploy it again with `make deploy`)"
        )
    return outputs
