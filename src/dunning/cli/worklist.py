"""`dunning worklist`: the collector's worklist of a deployed stack (CONTRACT 9), as CSV.

The same rows, in the same order and with the same columns as the simulator's OUT/worklist.csv
(services.worklist), read from the stack's ledger with the caller's AWS profile. The policy is the one in
force in the stack's bucket, read the way the deployed functions read it (adapters.policy_store). The stack's
outputs say where the ledger and the bucket are: the only thing to know is the stack name.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from botocore.exceptions import BotoCoreError, ClientError

from dunning.cli.stack import DENIED_CODES, StackCommandError, open_stack

if TYPE_CHECKING:
    from collections.abc import Callable

    from dunning.adapters.ledger import Ledger
    from dunning.adapters.storage import ObjectStore
    from dunning.domain.policy import Policy
    from dunning.domain.tasks import Task

REQUIRED_OUTPUTS = ("LedgerTableName", "IngestBucketName")


class WorklistError(StackCommandError):
    """Something the collector can act on: one line, exit status 1."""


@dataclass
class Letters:
    """What the letter column says of a letter task: the PDF downloaded into `folder`, or without one its
    s3:// address in the stack's bucket."""

    bucket: str
    folder: Path | None
    wanted: dict[Path, str] = field(default_factory=dict)  # where each is written: its key in the bucket

    def link(self, task: Task) -> str:
        if task.letter is None:
            return ""
        if self.folder is None:
            return f"s3://{self.bucket}/{task.letter}"
        path = self.folder / f"{task.task_id}.pdf"
        self.wanted[path] = task.letter
        return path.as_posix()

    def fetch(self, store: ObjectStore) -> dict[Path, bytes]:
        return {path: store.read(self.bucket, key) for path, key in self.wanted.items()}


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a date written YYYY-MM-DD") from None


def add_arguments(commands: Any, parser_class: type[argparse.ArgumentParser]) -> None:
    del parser_class  # no sub-actions
    command = commands.add_parser(
        "worklist",
        help="the collector's open tasks of a deployed stack, by priority, as CSV (uses your AWS profile)",
        description="Prints the open tasks (calls, letters, reviews...) of a deployed stack by priority, "
        "with the columns of the simulator's OUT/worklist.csv.",
    )
    command.add_argument("--stack", default="dunning", help="CloudFormation stack name (default: dunning)")
    command.add_argument("--profile", help="AWS profile (default: the usual AWS credential chain)")
    command.add_argument("--region", help="AWS region (default: the profile's)")
    command.add_argument(
        "--owner", metavar="EMAIL", help="only this owner's tasks (unassigned ones are left out)"
    )
    command.add_argument(
        "--on", type=_date, metavar="YYYY-MM-DD", help="the day (default: today in the business time zone)"
    )
    command.add_argument("--out", type=Path, metavar="FILE", help="write the CSV here (default: stdout)")
    command.add_argument("--scripts", type=Path, metavar="DIR", help="write each task's call script here")
    command.add_argument(
        "--letters",
        type=Path,
        metavar="DIR",
        help="write each letter task's letter (PDF, to print and post) here (default: its s3:// address)",
    )


def run_worklist(args: argparse.Namespace, out: TextIO) -> int:
    from dunning.adapters.ledger import Ledger
    from dunning.adapters.policy_store import ACTIVE_POLICY_KEY, ActivePolicy
    from dunning.adapters.storage import ObjectStore

    try:
        session, outputs = open_stack(args.profile, args.region, args.stack, REQUIRED_OUTPUTS, WorklistError)
        store = ObjectStore(session.client("s3"))
        policy = ActivePolicy(store, outputs["IngestBucketName"], ACTIVE_POLICY_KEY).current()
        ledger = Ledger(session.resource("dynamodb"), outputs["LedgerTableName"])

        def template_dirs() -> list[Path]:
            # The business's own templates in the bucket first (as the functions use them), then ours.
            from dunning.adapters.overrides import TemplateOverrides
            from dunning.domain.clock import current_clock
            from dunning.notices.render import shipped_template_dir

            overrides = TemplateOverrides(store, outputs["IngestBucketName"], current_clock()).directory()
            return [d for d in (overrides, shipped_template_dir()) if d is not None]

        letters = Letters(outputs["IngestBucketName"], args.letters)
        text, scripts = worklist_csv(
            ledger, policy, args.on, args.owner, args.scripts, template_dirs, letters.link
        )
        pdfs = letters.fetch(store)
    except ClientError as exc:
        code = exc.response["Error"]["Code"]
        message = exc.response["Error"].get("Message", code)
        if code in DENIED_CODES:
            raise WorklistError(
                f"not allowed: {message} (use a profile that may read the stack's ledger table and bucket)"
            ) from exc
        raise WorklistError(f"{code}: {message}") from exc
    except BotoCoreError as exc:
        raise WorklistError(str(exc)) from exc
    try:
        for path, script in scripts.items():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(script, encoding="utf-8")
        for path, pdf in pdfs.items():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(pdf)
        if args.out is None:
            out.write(text)
        else:
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise WorklistError(f"cannot write {exc.filename}: {exc.strerror}") from exc
    if args.out is not None:
        rows = max(0, len(text.splitlines()) - 1)
        print(f"{rows} open task(s) written to {args.out}", file=sys.stderr)
    return 0


def worklist_csv(
    ledger: Ledger,
    policy: Policy,
    on: date | None,
    owner: str | None,
    scripts_dir: Path | None,
    template_dirs: Callable[[], list[Path]],
    letter_of: Callable[[Task], str] = lambda task: "",
) -> tuple[str, dict[Path, str]]:
    """The worklist of `on` (default: today in the business time zone) as CSV, and the call scripts to write
    (path -> text) when `scripts_dir` is given, rendered with `template_dirs()` (looked up once).
    `owner`: only that owner's tasks (case-insensitive); unassigned tasks are shown only without it.
    `letter_of`: what the letter column says of a task (where its letter is)."""
    from dunning.domain.account import AccountSnapshot
    from dunning.domain.calendar import local_date
    from dunning.notices.scripts import render_call_script
    from dunning.services import worklist

    day = on or local_date(datetime.now(UTC), policy.business_timezone)
    events = ledger.all_events()
    end = worklist.local_day_end(day, policy)
    tasks = worklist.open_tasks(events, end)
    if owner is not None:
        wanted = owner.strip().lower()
        tasks = [task for task in tasks if (task.owner or "").strip().lower() == wanted]

    def snapshot_of(account_id: str, currency: str) -> AccountSnapshot:
        return AccountSnapshot.from_items(account_id, ledger.account_items(account_id), currency)

    def broken(account_id: str) -> int:
        return worklist.broken_in_a_row(events, account_id, end)

    items = worklist.worklist(tasks, snapshot_of, broken, policy, day)
    scripts: dict[Path, str] = {}
    directories: list[Path] = []

    def script_of(item: worklist.WorkItem) -> str:
        if scripts_dir is None:
            return ""
        path = scripts_dir / worklist.script_path(item.task).name
        context = worklist.script_context(item, policy, day)
        directories[:] = directories or template_dirs()
        scripts[path] = render_call_script(context, directories)
        return path.as_posix()

    return worklist.csv_text(items, script_of, lambda item: letter_of(item.task)), scripts
