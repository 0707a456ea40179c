"""The `dunning` command line."""

from __future__ import annotations

import argparse
import importlib.util
import sys
from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import Any

from dunning.domain.policy import PolicyError, load_policy

EXIT_USAGE = 2
# `dunning simulate` and `dunning ingest` run an embedded AWS: moto, from the local extra (not a runtime pin).
LOCAL_COMMANDS = ("ingest", "simulate")
LOCAL_TOOLING_MISSING = "install the local tooling: pip install 'dunning[local]'"


class UsageError(Exception):
    """A mistake in how the command was called: one line on stderr, exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:  # argparse's own errors follow our one-line, exit-2 rule
        raise UsageError(message)


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a date written YYYY-MM-DD") from None


def _days(text: str) -> int:
    try:
        days = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a whole number of days") from None
    if not 1 <= days <= 3660:
        raise argparse.ArgumentTypeError("--days must be between 1 and 3660")
    return days


def _readable_file(text: str) -> Path:
    path = Path(text)
    if not path.is_file():
        raise argparse.ArgumentTypeError(f"cannot read '{text}': no such file")
    return path


def _folder(text: str) -> Path:
    path = Path(text)
    if not path.is_dir():
        raise argparse.ArgumentTypeError(f"cannot read '{text}': no such folder")
    return path


def _out_dir(text: str) -> Path:
    """An output folder: it may not exist yet, but neither it nor a folder above it may be a file."""
    path = Path(text)
    for candidate in (path, *path.parents):
        if candidate.exists() and not candidate.is_dir():
            raise argparse.ArgumentTypeError(
                f"cannot write to '{text}': '{candidate}' is a file, not a folder"
            )
    return path


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("dunning")
    except PackageNotFoundError:  # pragma: no cover - run from a checkout without installing
        return "unknown"


def _documents(text: str) -> Path:
    path = Path(text)
    if not path.exists():
        raise argparse.ArgumentTypeError(f"cannot read '{text}': no such file or folder")
    return path


def _add_inputs(command: argparse.ArgumentParser, *, invoices_required: bool) -> None:
    """The upload files both local commands take (the same as the bucket's incoming/ prefixes)."""
    command.add_argument(
        "--invoices",
        action="append",
        type=_readable_file,
        required=invoices_required,
        default=[],
        metavar="FILE",
        help="invoice CSV, our format or a Xero export (repeatable); "
        "invoice PDFs beside it, or in documents/ beside it, are uploaded too",
    )
    command.add_argument("--payments", action="append", type=_readable_file, default=[], metavar="FILE")
    command.add_argument("--actions", action="append", type=_readable_file, default=[], metavar="FILE")
    command.add_argument(
        "--documents",
        action="append",
        type=_documents,
        default=[],
        metavar="PATH",
        help="more invoice PDFs, or folders of them (repeatable)",
    )
    command.add_argument("--policy", type=_readable_file, metavar="FILE", help="policy file (JSON or YAML)")
    command.add_argument("--out", type=_out_dir, default=Path("dunning-out"), metavar="DIR")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="dunning", description="Collections automation: ledger, ladder, notices, legal hand-off."
    )
    parser.add_argument("--version", action="version", version=f"dunning {_version()}")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    ingest = commands.add_parser(
        "ingest",
        help="import files into an embedded AWS (moto) and report what was imported and rejected",
        description="Runs the deployed ingest function in-process on an embedded AWS: each file is put under "
        "the upload prefix for its kind and processed exactly as in the cloud. Use it to check files "
        "before uploading them.",
    )
    _add_inputs(ingest, invoices_required=False)
    ingest.add_argument("--at", type=_date, metavar="YYYY-MM-DD", help="upload date (default: today)")

    simulate = commands.add_parser(
        "simulate",
        help="replay months of collections on an embedded AWS (moto) in minutes",
        description="Runs the real system in-process on moto: the ingest path, the Lambda handlers and the "
        "deployed state machine, with the clock fast-forwarded day by day. Writes the outbox (.eml), "
        "events.jsonl, rejected/ and report.html into OUT.",
    )
    _add_inputs(simulate, invoices_required=True)
    simulate.add_argument(
        "--start", type=_date, metavar="YYYY-MM-DD", help="first simulated day (default today)"
    )
    simulate.add_argument(
        "--days", type=_days, default=120, metavar="N", help="days to simulate (default 120)"
    )
    simulate.add_argument(
        "--templates",
        type=_folder,
        metavar="DIR",
        help="your own notice templates (<language>/<file>.j2), overriding the shipped ones",
    )
    simulate.add_argument(
        "--ses-sandbox",
        action="store_true",
        help="SES in the sandbox: every recipient not verified (--ses-verified) is refused",
    )
    simulate.add_argument(
        "--ses-verified",
        action="append",
        default=[],
        metavar="ADDRESS",
        help="an address or domain verified in the embedded SES (repeatable)",
    )
    simulate.add_argument("--quiet", action="store_true", help="no progress bar")
    from dunning.cli.cases import add_arguments as add_cases
    from dunning.cli.preflight import add_arguments as add_preflight
    from dunning.cli.worklist import add_arguments as add_worklist

    add_cases(commands, _Parser)
    add_worklist(commands, _Parser)
    add_preflight(commands, _Parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    arguments = sys.argv[1:] if argv is None else list(argv)
    try:
        parser = build_parser()
        if not arguments:  # bare `dunning`: the usage and the commands, as a usage error (exit status 2)
            parser.print_help(sys.stderr)
            return EXIT_USAGE
        try:
            args = parser.parse_args(arguments)
        except SystemExit as exc:  # --version and --help print, then argparse exits: return its status
            return exc.code if isinstance(exc.code, int) else EXIT_USAGE
        if args.command in LOCAL_COMMANDS and importlib.util.find_spec("moto") is None:
            print(
                f"dunning: error: `dunning {args.command}` needs moto: {LOCAL_TOOLING_MISSING}",
                file=sys.stderr,
            )
            return 1
        if getattr(args, "policy", None):
            load_policy(args.policy)  # fail fast, before anything runs, on a policy we cannot use
        if args.command == "ingest":
            from dunning.cli.ingest import run_ingest

            return run_ingest(args, out=sys.stdout)
        if args.command in ("cases", "worklist", "preflight"):
            return _run_stack_command(args)
        if args.command == "simulate":
            from dunning.cli.simulate import run_simulate

            return run_simulate(args, out=sys.stdout)
    except (UsageError, PolicyError) as exc:
        message = " ".join(str(exc).split())  # always one line
        print(f"dunning: error: {message}", file=sys.stderr)
        return EXIT_USAGE
    return EXIT_USAGE


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())


def _run_stack_command(args: argparse.Namespace) -> int:
    """The commands that work on a deployed stack: a mistake the user can fix is one line, exit status 1."""
    from dunning.cli.cases import run_cases
    from dunning.cli.preflight import run_preflight
    from dunning.cli.stack import StackCommandError
    from dunning.cli.worklist import run_worklist

    run = {"cases": run_cases, "worklist": run_worklist}.get(args.command, run_preflight)
    try:
        return run(args, out=sys.stdout)
    except StackCommandError as exc:
        print(f"dunning: error: {exc}", file=sys.stderr)
        return 1
