"""What each Lambda handler loads at import (issue 12, cold starts): what it uses on every invocation and
nothing it does not use, or uses only on some invocations (which import it where they use it).

Each handler is imported the way Lambda imports it (`app`, with its folder and then the package on sys.path)
in a fresh interpreter with a deployed function's environment (LAMBDA_TASK_ROOT set, tracing on), and its
sys.modules is checked. `python -m bench.handler_imports` times the same imports against bare boto3.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FUNCTIONS = ("scan_overdue", "escalate", "send_notice", "ingest", "ses_events", "digest")

# Never at any handler's import: PDFs and case packets are made on some invocations only (a letter stage, a
# hand-off), email addresses are validated only by the ingest's rows, YAML is read only from a policy upload
# (the policy in force is JSON), the local tooling never ships, and the tracer patches botocore alone
# (dunning.runtime.tracing: not sqlite3, http.client's users, requests).
NEVER = (
    "fpdf",
    "uharfbuzz",
    "fontTools",
    "PIL",
    "dunning.packets",
    "email_validator",
    "yaml",
    "dunning.local",
    "dunning.cli",
    "moto",
    "sqlite3",
    "requests",
    "aws_xray_sdk.ext.httplib",
)
# Jinja and the notices' templates, the legal desk, the upload formats, the holidays package.
RENDERING = ("jinja2", "dunning.notices.templating", "babel.messages")
LEGAL = ("dunning.services.legal",)
INGEST = ("dunning.ingest",)
NOTICES = ("dunning.notices", "dunning.adapters.mailer")
HOLIDAYS = ("holidays",)
# Deployed, tracing is on: the X-Ray SDK is loaded and botocore patched with the handler (every AWS call of
# every invocation is traced), not by the first invocation.
TRACING = ("aws_xray_sdk.core", "aws_xray_sdk.ext.botocore.patch")

# function -> (what it must have loaded at import, what it must not have loaded).
EXPECTED: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    # Starts the day's executions: no business calendar, no notices, no legal desk.
    "scan_overdue": (TRACING, (*RENDERING, *LEGAL, *INGEST, *NOTICES, *HOLIDAYS)),
    # Records SES events: not even the policy's business calendar.
    "ses_events": (TRACING, (*RENDERING, *LEGAL, *INGEST, *NOTICES, *HOLIDAYS)),
    # Every decision counts business days; the legal hand-off's packets and emails come when one is made.
    "escalate": ((*TRACING, *HOLIDAYS), (*RENDERING, *INGEST)),
    # Every send decides and renders; a letter's PDF comes with the first letter.
    "send_notice": ((*TRACING, *HOLIDAYS, "jinja2", "dunning.notices.templating"), (*LEGAL, *INGEST)),
    # The upload formats on every invocation; the legal desk only for an upload of payments.
    "ingest": ((*TRACING, "dunning.ingest.service"), (*RENDERING, *HOLIDAYS)),
    # The owners' daily digest: the worklist and an email; never the legal desk nor the upload formats.
    "digest": (TRACING, (*LEGAL, *INGEST)),
}

_IMPORT = """
import json, sys
sys.path[:0] = sys.argv[1:]
import app
print(json.dumps(sorted(sys.modules)))
"""


def _lambda_environment(folder: Path) -> dict[str, str]:
    environment = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("POWERTOOLS_", "AWS_", "PYTHON", "LAMBDA_", "_X_AMZN"))
    }
    return environment | {
        "LAMBDA_TASK_ROOT": str(folder),
        "AWS_LAMBDA_FUNCTION_NAME": f"dunning-{folder.name}",
        "AWS_REGION": "eu-west-1",
        "AWS_DEFAULT_REGION": "eu-west-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "LEDGER_TABLE": "dunning-ledger",
        "POWERTOOLS_SERVICE_NAME": "dunning",
        "POWERTOOLS_METRICS_NAMESPACE": "Dunning",
        "PYTHONDONTWRITEBYTECODE": "1",
    }


def _loaded_by(function: str, tmp_path: Path) -> set[str]:
    folder = ROOT / "functions" / function
    done = subprocess.run(
        [sys.executable, "-c", _IMPORT, str(folder), str(ROOT / "src")],
        cwd=tmp_path,
        env=_lambda_environment(folder),
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    modules: list[str] = json.loads(done.stdout.splitlines()[-1])
    return set(modules)


def _matching(modules: set[str], names: tuple[str, ...]) -> list[str]:
    """The modules that are one of `names` or inside one of them."""
    return sorted(m for m in modules if any(m == name or m.startswith(f"{name}.") for name in names))


@pytest.mark.parametrize("function", FUNCTIONS)
def test_a_handler_imports_what_every_invocation_uses_and_nothing_it_does_not(
    function: str, tmp_path: Path
) -> None:
    required, forbidden = EXPECTED[function]
    loaded = _loaded_by(function, tmp_path)
    assert _matching(loaded, (*NEVER, *forbidden)) == [], f"functions/{function}/app.py imports these"
    missing = [name for name in required if name not in loaded]
    assert missing == [], f"functions/{function}/app.py should load these with the handler, not later"


def test_every_function_has_its_expectations() -> None:
    folders = {path.parent.name for path in (ROOT / "functions").glob("*/app.py")}
    assert folders == set(EXPECTED)
