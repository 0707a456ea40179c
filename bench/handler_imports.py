"""Cold-start imports of the Lambda handlers: `python -m bench.handler_imports [--quick]` (`make bench`).

For each function under functions/, a fresh interpreter imports the handler module the way Lambda does
(`app`, with the function's folder and then the layer's code on sys.path) and times the import alone; a
fresh interpreter importing bare `boto3` is the yardstick. The runs alternate between the targets so that
load on the machine hits them alike; each target's median of N runs (15, `--quick` 5) is compared with
boto3's, in wall-clock time (the target of issue 12: at most 2.5 times) and in CPU time, which a busy
machine stretches less.

The interpreters start without site (`-S`, the venv's site-packages added by hand, standing in for the
layer: this machine's Python and wheels, not Lambda's) and with the environment of a deployed function:
LAMBDA_TASK_ROOT set and tracing on, as `Tracing: Active` runs it. Outside Lambda the X-Ray SDK builds a
sampling client at import (two botocore clients, about as long as importing boto3), which Lambda does not.

Then one `-X importtime` run per handler says where its import goes: self time by top-level package, and
which of the modules a function may leave for later (HEAVY) it loaded. Printed, and written to
bench/results.json under "handler_imports" (the other keys of that file are kept).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import sysconfig
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results.json"
FUNCTIONS = ("scan_overdue", "escalate", "send_notice", "ingest", "ses_events")
BASELINE = "boto3"
TARGET_RATIO = 2.5
# Modules worth seeing in a handler's import: what issue 12 found every function paying for.
HEAVY = (
    "jinja2",
    "babel",
    "holidays",
    "fpdf",
    "yaml",
    "email_validator",
    "aws_xray_sdk",
    "dunning.services.legal",
)

# Runs in the fresh interpreter: argv is the module to import, then the sys.path entries to put first.
CHILD = """
import sys, time
module, *paths = sys.argv[1:]
sys.path[:0] = paths
wall, cpu = time.perf_counter(), time.process_time()
__import__(module)
print(time.perf_counter() - wall, time.process_time() - cpu)
"""


def site_packages() -> list[str]:
    """Where the venv's packages are (the layer's stand-in): the interpreter runs with -S, without site."""
    paths = sysconfig.get_paths()
    return list(dict.fromkeys([paths["purelib"], paths["platlib"]]))


def lambda_environment(function: str) -> dict[str, str]:
    """What a deployed function's process has at import (infra/template.yaml's Globals and Lambda's own)."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LANG": "en_US.UTF-8",
        "TZ": ":UTC",
        "PYTHONDONTWRITEBYTECODE": "1",
        "LAMBDA_TASK_ROOT": str(ROOT / "functions" / function),
        "LAMBDA_RUNTIME_DIR": "/var/runtime",
        "AWS_LAMBDA_FUNCTION_NAME": f"dunning-{function}",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "512",
        "AWS_EXECUTION_ENV": "AWS_Lambda_python3.12",
        "_HANDLER": "app.handler",
        "AWS_REGION": "eu-west-1",
        "AWS_DEFAULT_REGION": "eu-west-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_XRAY_DAEMON_ADDRESS": "169.254.79.129:2000",
        "AWS_XRAY_CONTEXT_MISSING": "LOG_ERROR",
        "LEDGER_TABLE": "dunning-ledger",
        "POWERTOOLS_SERVICE_NAME": "dunning",
        "POWERTOOLS_METRICS_NAMESPACE": "Dunning",
        "POWERTOOLS_LOG_LEVEL": "INFO",
    }


def command(target: str, *flags: str) -> tuple[list[str], dict[str, str]]:
    """The fresh interpreter's command line and environment that import `target` (a function, or boto3)."""
    if target == BASELINE:
        paths, module, environment = site_packages(), BASELINE, lambda_environment(FUNCTIONS[0])
    else:
        folder = str(ROOT / "functions" / target)
        paths, module, environment = (
            [folder, str(ROOT / "src"), *site_packages()],
            "app",
            lambda_environment(target),
        )
    return [sys.executable, "-S", *flags, "-c", CHILD, module, *paths], environment


def time_import(target: str) -> tuple[float, float]:
    """Seconds the import took: wall clock, and CPU time (what it would take on an idle machine)."""
    args, environment = command(target)
    done = subprocess.run(args, env=environment, cwd="/", capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"importing {target} failed:\n{done.stderr}")
    wall, cpu = done.stdout.strip().splitlines()[-1].split()
    return float(wall), float(cpu)


def import_profile(target: str) -> dict[str, Any]:
    """One `-X importtime` run: self time (ms) by top-level package, and the HEAVY modules it loaded."""
    args, environment = command(target, "-X", "importtime")
    done = subprocess.run(args, env=environment, cwd="/", capture_output=True, text=True, check=True)
    by_package: Counter[str] = Counter()
    loaded = set()
    for line in done.stderr.splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        self_us, _cumulative, name = line.removeprefix("import time:").split("|")
        if not self_us.strip().isdigit():
            continue  # the header line
        name = name.strip()
        loaded.add(name)
        package = ".".join(name.split(".")[:2]) if name.startswith("dunning.") else name.split(".")[0]
        by_package[package] += int(self_us)
    heavy = [module for module in HEAVY if module in loaded]
    top = {package: round(us / 1000, 1) for package, us in by_package.most_common(8)}
    return {"modules": len(loaded), "heavy": heavy, "self_ms_by_package": top}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="5 runs per target instead of 15")
    parser.add_argument("--runs", type=int, help="runs per target (overrides --quick)")
    args = parser.parse_args(argv)
    runs = args.runs or (5 if args.quick else 15)
    targets = (BASELINE, *FUNCTIONS)

    walls: dict[str, list[float]] = {target: [] for target in targets}
    cpus: dict[str, list[float]] = {target: [] for target in targets}
    for _ in range(runs):
        for target in targets:
            wall, cpu = time_import(target)
            walls[target].append(wall)
            cpus[target].append(cpu)
    wall_ms = {target: statistics.median(values) * 1000 for target, values in walls.items()}
    cpu_ms = {target: statistics.median(values) * 1000 for target, values in cpus.items()}

    print(f"handler imports: median of {runs} fresh interpreters each, Python {platform.python_version()}")
    print(f"{'import':<18}{'wall ms':>9}{'x boto3':>9}{'cpu ms':>9}{'x boto3':>9}  heavy modules loaded")
    report: dict[str, Any] = {
        "runs": runs,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "target_ratio": TARGET_RATIO,
        "boto3_wall_ms": round(wall_ms[BASELINE], 1),
        "boto3_cpu_ms": round(cpu_ms[BASELINE], 1),
        "functions": {},
    }
    print(f"{'boto3':<18}{wall_ms[BASELINE]:>9.1f}{1:>9.2f}{cpu_ms[BASELINE]:>9.1f}{1:>9.2f}")
    over = []
    for function in FUNCTIONS:
        ratio = wall_ms[function] / wall_ms[BASELINE]
        cpu_ratio = cpu_ms[function] / cpu_ms[BASELINE]
        profile = import_profile(function)
        print(
            f"{function:<18}{wall_ms[function]:>9.1f}{ratio:>9.2f}{cpu_ms[function]:>9.1f}{cpu_ratio:>9.2f}"
            f"  {', '.join(profile['heavy']) or '-'}"
        )
        report["functions"][function] = {
            "wall_ms": round(wall_ms[function], 1),
            "ratio": round(ratio, 2),
            "cpu_ms": round(cpu_ms[function], 1),
            "cpu_ratio": round(cpu_ratio, 2),
            **profile,
        }
        if ratio > TARGET_RATIO:
            over.append(function)
    print("\nself time by top-level package (ms, one -X importtime run each):")
    for function in FUNCTIONS:
        packages = report["functions"][function]["self_ms_by_package"]
        print(f"  {function}: " + ", ".join(f"{name} {ms}" for name, ms in packages.items()))
    # On a busy machine the wall clock of every run stretches; the CPU ratio is the steadier of the two.
    print(
        f"\nover {TARGET_RATIO}x boto3 (wall clock): {', '.join(over)}"
        if over
        else f"\nevery handler within {TARGET_RATIO}x boto3 (wall clock)"
    )

    # Other benches write their own keys to the same file: only ours is replaced.
    results = json.loads(RESULTS.read_text(encoding="utf-8")) if RESULTS.exists() else {}
    results["handler_imports"] = report
    RESULTS.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(f"written to {RESULTS.relative_to(ROOT)} (handler_imports)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
