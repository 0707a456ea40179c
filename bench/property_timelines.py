"""The property tests of random account timelines (tests/support/timelines.py), with many more examples:
`python -m bench.property_timelines [--examples N] [--max-days D] [--workers W]` (`--quick`: 20 examples).

Hypothesis generates the timelines (derandomized: the same N every run); each is simulated in a worker
process on its own embedded AWS, and every property is checked on every example instead of stopping at
the first failure. Printed: examples run, and per property how many examples broke it, with the smallest
such timeline (fewest accounts, rows and days) and its first violations. Nothing asserts: the exit status
is 0 however many violations; `make test` runs the same properties as tests (few examples, asserting).
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

from hypothesis import HealthCheck, Phase, given, settings

from tests.support.timelines import PROPERTIES, Timeline, simulate, timelines, violations


@dataclass(frozen=True)
class Result:
    timeline: Timeline
    found: dict[str, list[str]]
    seconds: float


def generate(count: int, max_days: int) -> list[Timeline]:
    """`count` timelines as the property test draws them, without running anything."""
    drawn: list[Timeline] = []

    @settings(
        max_examples=count,
        derandomize=True,
        database=None,
        deadline=None,
        phases=(Phase.generate,),
        suppress_health_check=list(HealthCheck),
    )
    @given(timeline=timelines(max_days=max_days))
    def collect(timeline: Timeline) -> None:
        drawn.append(timeline)

    collect()
    return drawn


def run_one(timeline: Timeline) -> Result:
    started = time.perf_counter()
    try:
        found = violations(simulate(timeline))
    except Exception as exc:  # a crash of the harness itself is a finding too, not the end of the bench
        found = {name: [] for name in PROPERTIES} | {"terminates": [f"{type(exc).__name__}: {exc}"]}
    return Result(timeline, found, time.perf_counter() - started)


def size(timeline: Timeline) -> tuple[int, int, int]:
    rows = (
        len(timeline.invoices) + len(timeline.payments) + len(timeline.actions) + len(timeline.lost_responses)
    )
    return len(timeline.accounts), rows, timeline.days


def report(results: Sequence[Result], seconds: float) -> None:
    print(
        f"examples run: {len(results)} in {seconds:.0f} s ({seconds / max(1, len(results)):.1f} s each, wall)"
    )
    print(f"{'property':<18} {'violated in':>11}")
    for name in PROPERTIES:
        broken = [result for result in results if result.found.get(name)]
        print(f"{name:<18} {len(broken):>11}")
    for name in PROPERTIES:
        broken = [result for result in results if result.found.get(name)]
        if not broken:
            continue
        smallest = min(broken, key=lambda result: size(result.timeline))
        print(f"\n== {name}: smallest of {len(broken)} failing timelines")
        print(f"   {smallest.timeline!r}")
        for violation in smallest.found[name][:3]:
            print(f"   - {violation}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.property_timelines", description=__doc__)
    parser.add_argument("--examples", type=int, default=200)
    parser.add_argument("--max-days", type=int, default=60)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--quick", action="store_true", help="20 examples of at most 40 days")
    args = parser.parse_args(argv)
    examples, max_days = (20, 40) if args.quick else (args.examples, args.max_days)
    drawn = generate(examples, max_days)
    started = time.perf_counter()
    # Spawned, not forked: each worker is a fresh interpreter, and moto's execution threads do not fork well.
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=max(1, args.workers), mp_context=context) as pool:
        results = list(pool.map(run_one, drawn))
    report(results, time.perf_counter() - started)
    return 0


if __name__ == "__main__":
    sys.exit(main())
