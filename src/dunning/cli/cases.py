"""`dunning cases`: the legal team's view of a deployed stack (list, show, download and verify packets).

Uses the caller's AWS profile. The stack's outputs say where the ledger and the legal bucket are, so the
only thing to know is the stack name (default `dunning`, as in samconfig.toml).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from dunning.adapters.cases import DynamoCases
from dunning.adapters.ledger import Ledger
from dunning.cli.stack import DENIED_CODES, StackCommandError, open_stack
from dunning.domain.money import format_amount
from dunning.ports import CaseRecords

if TYPE_CHECKING:
    from dunning.services.legal import Case


class CasesError(StackCommandError):
    """Something the legal team can act on: one line, exit status 1."""


def add_arguments(commands: Any, parser_class: type[argparse.ArgumentParser]) -> None:
    cases = commands.add_parser("cases", help="legal cases of a deployed stack (uses your AWS profile)")
    cases.add_argument("--stack", default="dunning", help="CloudFormation stack name (default: dunning)")
    cases.add_argument("--profile", help="AWS profile (default: the usual AWS credential chain)")
    cases.add_argument("--region", help="AWS region (default: the profile's)")
    # The same options after the action too (`dunning cases list --region eu-west-1`); SUPPRESS keeps an
    # option not given there from overwriting the one given before the action.
    after = argparse.ArgumentParser(add_help=False)
    after.add_argument("--stack", default=argparse.SUPPRESS, help="CloudFormation stack name")
    after.add_argument("--profile", default=argparse.SUPPRESS, help="AWS profile")
    after.add_argument("--region", default=argparse.SUPPRESS, help="AWS region")
    actions = cases.add_subparsers(dest="cases_command", required=True, parser_class=parser_class)
    listing = actions.add_parser("list", help="every case, newest first", parents=[after])
    listing.add_argument("--status", choices=("open", "settled"), help="only cases with this status")
    show = actions.add_parser("show", help="one case's record", parents=[after])
    show.add_argument("case_id")
    download = actions.add_parser(
        "download", help="download a case packet and verify its manifest", parents=[after]
    )
    download.add_argument("case_id")
    download.add_argument("--out", type=Path, default=Path(), metavar="DIR")


def run_cases(args: argparse.Namespace, out: TextIO) -> int:
    # imported here: building the CLI parser must not set up the functions' logging
    from dunning.services import legal

    try:
        required = ("LedgerTableName", "LegalBucketName")
        session, outputs = open_stack(args.profile, args.region, args.stack, required, CasesError)
        cases = DynamoCases(Ledger(session.resource("dynamodb"), outputs["LedgerTableName"]))
        if args.cases_command == "list":
            return _list(cases, args.status, out)
        case = legal.get_case(cases, args.case_id)
        if case is None:
            raise CasesError(f"no case {args.case_id} in stack {args.stack} (see `dunning cases list`)")
        if args.cases_command == "show":
            return _show(case, out)
        return _download(session, outputs["LegalBucketName"], case, args.out, out)
    except ClientError as exc:
        code = exc.response["Error"]["Code"]
        if code in DENIED_CODES:
            raise CasesError(
                f"not allowed: {exc.response['Error'].get('Message', code)} "
                "(use a profile that can assume the stack's LegalTeamRole)"
            ) from exc
        raise CasesError(f"{code}: {exc.response['Error'].get('Message', '')}") from exc
    except BotoCoreError as exc:
        raise CasesError(str(exc)) from exc


def _money(amount: Any, currency: str) -> str:
    return f"{format_amount(amount, currency)} {currency}"


def _list(records: CaseRecords, status: str | None, out: TextIO) -> int:
    from dunning.services.legal import list_cases

    cases = sorted(list_cases(records), key=lambda case: case.created_at, reverse=True)
    cases = [case for case in cases if status is None or case.status == status]
    if not cases:
        print("No cases.", file=out)
        return 0
    print(
        f"{'case':<40} {'status':<8} {'opened':<20} {'account':<24} {'handed over':>16} {'balance':>16}",
        file=out,
    )
    for case in cases:
        print(
            f"{case.case_id:<40} {case.status:<8} {case.created_at:<20} {case.account_id[:24]:<24} "
            f"{_money(case.amount_due, case.currency):>16} {_money(case.balance, case.currency):>16}",
            file=out,
        )
    return 0


def _show(case: Case, out: TextIO) -> int:
    rows = [
        ("case", case.case_id),
        ("account", case.account_id),
        ("status", case.status),
        ("opened", case.created_at),
        ("updated", case.updated_at),
        ("handed over", _money(case.amount_due, case.currency)),
        ("balance", _money(case.balance, case.currency)),
        ("packet", f"{case.packet_key} ({case.packet_bytes} bytes)"),
        ("packet sha256", case.packet_sha256),
    ]
    for label, value in rows:
        print(f"{label + ':':<15} {value}", file=out)
    return 0


def _download(session: boto3.session.Session, bucket: str, case: Case, folder: Path, out: TextIO) -> int:
    from dunning.packets.archive import verify_packet

    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{case.case_id}.zip"
    session.client("s3").download_file(bucket, case.packet_key, str(target))
    with target.open("rb") as handle:
        problems = verify_packet(handle)
    if problems:
        for problem in problems:
            print(f"  {problem}", file=out)
        raise CasesError(f"{target}: the packet does NOT match its manifest; do not rely on it")
    print(f"Downloaded {target}: every file matches the SHA-256 in its manifest.", file=out)
    return 0
