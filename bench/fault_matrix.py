"""The fault matrix at full strength: `python -m bench.fault_matrix [--quick]`.

Every fault class of tests/integration/test_fault_matrix.py is injected into the real state machine on the
embedded AWS while the portfolio of tests/support/faults.py walks 30 days, at higher rates than the tests
use (`--quick`: the test rates). After each run the same promises are checked: 0 duplicate emails,
0 notices after payment, 0 lost payments, 0 lost cases or legal emails. Printed: per class, the faults
injected and whether every promise held; then the totals. Exit status 1 if any promise broke.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from tests.support.collections import world
from tests.support.faults import (
    CRASH_POINTS,
    END,
    START,
    CrashPoint,
    LambdaFaults,
    SesFaults,
    check_promises,
    portfolio,
)


@dataclass(frozen=True)
class Outcome:
    name: str
    injected: int
    broken: str  # the first promise that broke, or ""
    seconds: float


def _ses(kind: str, rate: float, first_only: bool) -> Callable[[pytest.MonkeyPatch], Callable[[], int]]:
    def install(monkeypatch: pytest.MonkeyPatch) -> Callable[[], int]:
        faults = SesFaults(kind, rate=rate, first_attempt_only=first_only)
        faults.install(monkeypatch)
        return lambda: faults.injected

    return install


def _lambda(kind: str, rate: float) -> Callable[[pytest.MonkeyPatch], Callable[[], int]]:
    def install(monkeypatch: pytest.MonkeyPatch) -> Callable[[], int]:
        faults = LambdaFaults(kind, rate=rate)
        faults.install(monkeypatch)
        return lambda: faults.injected

    return install


def _crash(point: CrashPoint, nth: int) -> Any:
    def install(monkeypatch: pytest.MonkeyPatch) -> Callable[[], int]:
        crashed = point.install(monkeypatch, nth)
        return lambda: len(crashed)

    return install


PROMISES = {
    "duplicates": "more than once",
    "notices after payment": "after paying",
    "lost payments": "payment ",
    "lost cases or legal emails": "cases opened",
}


def classes(quick: bool) -> dict[str, Any]:
    rate = 0.3 if quick else 0.5
    # Each crash point is hit at its 1st call, or (full run) at each of its first 6: every notice stage.
    hits = 1 if quick else 6
    crash_classes = {
        f"{point.label} (call {nth})" if hits > 1 else point.label: _crash(point, nth)
        for point in CRASH_POINTS.values()
        for nth in range(1, hits + 1)
        if nth == 1 or point.name != "mark_legal"
    }
    return {
        "SES answer lost (read timeout) after accepting": _ses("timeout_after_accept", 1.0, True),
        "SES connection reset after accepting": _ses("reset_after_accept", 1.0, True),
        "SES HTTP 500 after accepting": _ses("http500_after_accept", 1.0, True),
        f"SES throttling ({rate:.0%} of attempts)": _ses("throttled", rate, False),
        f"SES unreachable ({rate:.0%} of attempts)": _ses("no_connection", rate, False),
        f"Lambda answer lost ({rate:.0%} of task calls)": _lambda("lost", rate),
        f"Lambda throttled ({rate:.0%} of task calls)": _lambda("throttled", rate),
        **crash_classes,
    }


def run_one(name: str, install: Any) -> Outcome:
    began = time.perf_counter()
    broken = ""
    with pytest.MonkeyPatch.context() as monkeypatch, world(START) as w:
        injected = install(monkeypatch)
        portfolio(w)
        try:
            w.run_through(END)
            check_promises(w)
        except AssertionError as exc:
            broken = str(exc).splitlines()[0]
        except Exception as exc:  # a run that crashes breaks the promises too: say how
            broken = f"{type(exc).__name__}: {exc}"
        count = injected()
    return Outcome(name, count, broken, time.perf_counter() - began)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the test suite's fault rates")
    args = parser.parse_args(argv)
    outcomes = [run_one(name, install) for name, install in classes(args.quick).items()]
    print("fault matrix: 5 accounts x 30 days through the real state machine, per fault class")
    for outcome in outcomes:
        verdict = "survived" if not outcome.broken else f"BROKEN: {outcome.broken}"
        print(f"  {outcome.name:<60} injected {outcome.injected:>3}  {verdict}  ({outcome.seconds:.0f} s)")
    broken = [outcome for outcome in outcomes if outcome.broken]
    injected = sum(outcome.injected for outcome in outcomes)
    kinds = {outcome.name.split(" (call")[0] for outcome in outcomes}
    print(
        f"fault classes injected: {len(kinds)} in {len(outcomes)} runs, runs survived: "
        f"{len(outcomes) - len(broken)}; faults injected: {injected}"
    )
    # check_promises stops at the first promise that breaks, in this order; its message names it.
    for promise, marker in PROMISES.items():
        print(f"  runs with {promise}: {sum(1 for o in broken if marker in o.broken)}")
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main())
