"""What ships where (issue 11): the Lambda layer holds what the functions import and nothing else; the local
tooling (the embedded AWS, the simulator, its report, the CLI, moto) is the `local` extra of the package.

The layer is built by infra/layer/Makefile (`sam build`, BuildMethod makefile). The build test below runs
`sam build` on the layer alone, the way `make build` and `make infra` do, into a scratch directory.
"""

from __future__ import annotations

import fnmatch
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import grimp
import pytest

from dunning.cli.main import main
from dunning.local.embedded_aws import load_template
from dunning.local.report import TEMPLATE_DIR

ROOT = Path(__file__).resolve().parents[2]
LAYER_MAKEFILE = ROOT / "infra" / "layer" / "Makefile"
LAYER_REQUIREMENTS = ROOT / "infra" / "layer" / "requirements.txt"
PACKAGE = ROOT / "src" / "dunning"
# Used only on a developer's machine: never in the layer.
LOCAL_TOOLING = {"local", "cli"}
# Distributions (top-level import names) that must never reach Lambda: the embedded AWS and the dev tools.
NOT_IN_LAYER = {"moto", "pytest", "_pytest", "hypothesis", "ruff", "mypy", "cfnlint", "importlinter", "pypdf"}


def _make_list(name: str) -> list[str]:
    """The words of `NAME := ...` in infra/layer/Makefile."""
    match = re.search(rf"^{name}\s*:=(.*)$", LAYER_MAKEFILE.read_text(encoding="utf-8"), re.MULTILINE)
    assert match, f"infra/layer/Makefile has no {name} := ..."
    return match.group(1).split()


def _layer_parts() -> set[str]:
    """The children of the dunning package the layer ships: package names, and module names without .py."""
    modules = _make_list("LAYER_MODULES")
    assert "__init__.py" in modules
    return set(_make_list("LAYER_PACKAGES")) | (
        {module.removesuffix(".py") for module in modules} - {"__init__"}
    )


def _package_parts() -> set[str]:
    """Every child of src/dunning: subpackages and modules."""
    return {
        path.name if path.is_dir() else path.stem
        for path in PACKAGE.iterdir()
        if (path.is_dir() and (path / "__init__.py").is_file())
        or (path.suffix == ".py" and path.name != "__init__.py")
    }


def _imported_by_handlers() -> set[str]:
    """The children of dunning that the Lambda handlers import, directly or through other modules."""
    graph = grimp.build_graph("dunning", "functions", cache_dir=None)
    handlers = sorted(module for module in graph.modules if re.fullmatch(r"functions\.\w+\.app", module))
    assert len(handlers) >= 5, f"expected the five functions' app modules, found {handlers}"
    imported = set()
    for handler in handlers:
        for module in graph.find_upstream_modules(handler):
            parts = module.split(".")
            if parts[0] == "dunning" and len(parts) > 1:
                imported.add(parts[1])
    return imported


def test_the_layer_ships_exactly_the_dunning_packages_the_handlers_import() -> None:
    layer, imported = _layer_parts(), _imported_by_handlers()
    assert layer == imported, (
        "infra/layer/Makefile's LAYER_PACKAGES / LAYER_MODULES must be what the functions import: "
        f"missing {sorted(imported - layer)}, not imported by any function {sorted(layer - imported)}"
    )


def test_every_part_of_the_package_is_either_in_the_layer_or_local_tooling() -> None:
    layer = _layer_parts()
    assert not layer & LOCAL_TOOLING, f"local tooling in the layer: {sorted(layer & LOCAL_TOOLING)}"
    assert layer <= _package_parts(), (
        f"the layer names what src/dunning lacks: {sorted(layer - _package_parts())}"
    )
    unplaced = _package_parts() - layer - LOCAL_TOOLING
    assert not unplaced, (
        f"src/dunning/{sorted(unplaced)}: add it to LAYER_PACKAGES in infra/layer/Makefile if a function "
        "imports it, or to LOCAL_TOOLING here if only local commands use it"
    )


def test_the_layer_is_built_for_the_architecture_its_functions_run_on() -> None:
    # SAM tells a makefile build only where to put it: the Makefile names the wheels' machine itself.
    template = load_template()
    machine = re.search(r"^LAYER_ARCH \?= *(\S+)$", LAYER_MAKEFILE.read_text(encoding="utf-8"), re.MULTILINE)
    assert machine, "infra/layer/Makefile has no LAYER_ARCH ?= ..."
    functions = template["Globals"]["Function"]["Architectures"]
    layer = template["Resources"]["SharedLayer"]
    assert functions == layer["Properties"]["CompatibleArchitectures"]
    assert functions == [layer["Metadata"]["BuildArchitecture"]]
    assert {"arm64": "aarch64", "x86_64": "x86_64"}[functions[0]] == machine.group(1)


def test_the_import_contract_keeps_moto_out_of_everything_in_the_layer() -> None:
    tool = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]
    contracts: list[dict[str, Any]] = tool["importlinter"]["contracts"]
    covered = {
        module
        for contract in contracts
        if contract.get("type") == "forbidden" and "moto" in contract.get("forbidden_modules", [])
        for module in contract["source_modules"]
    }
    uncovered = sorted({f"dunning.{part}" for part in _layer_parts()} - covered)
    assert not uncovered, f"no import-linter contract forbids these layer modules to import moto: {uncovered}"


def test_the_report_template_ships_as_package_data() -> None:
    tool = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]
    patterns: list[str] = tool["setuptools"]["package-data"].get("dunning.local", [])
    local = PACKAGE / "local"
    shipped = [path for path in sorted(TEMPLATE_DIR.rglob("*")) if path.is_file()]
    assert shipped, f"no templates in {TEMPLATE_DIR}"
    missing = [
        str(path.relative_to(local))
        for path in shipped
        if not any(fnmatch.fnmatch(path.relative_to(local).as_posix(), pattern) for pattern in patterns)
    ]
    assert not missing, (
        f"not package data of dunning.local in pyproject.toml (a wheel would lack them): {missing}"
    )


@pytest.mark.parametrize("command", ["simulate", "ingest"])
def test_a_local_command_without_moto_says_how_to_install_it_in_one_line(
    command: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "moto", None)  # `import moto` fails, find_spec finds nothing
    status = main([command, "--invoices", str(ROOT / "examples" / "invoices.csv")])
    out, err = capsys.readouterr()
    assert status == 1
    assert out == ""
    assert err.count("\n") == 1, err
    assert "install the local tooling: pip install 'dunning[local]'" in err


# --- the built layer --------------------------------------------------------------------------------------


def _sam() -> str | None:
    local = ROOT / ".venv-sam" / "bin" / "sam"
    return str(local) if local.is_file() else shutil.which("sam")


def _build_environment() -> dict[str, str]:
    # As `make infra` runs `sam build`: fake credentials, a region, pyenv's python3.12 unless one is chosen.
    environment = {
        key: value for key, value in os.environ.items() if key not in {"MAKEFLAGS", "MFLAGS", "MAKELEVEL"}
    }
    environment.setdefault("PYENV_VERSION", "3.12.1")
    environment.update(
        AWS_DEFAULT_REGION="eu-west-1", AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing"
    )
    environment["SAM_CLI_TELEMETRY"] = "0"
    return environment


def _python312_runs(environment: dict[str, str]) -> bool:
    try:
        return subprocess.run(["python3.12", "-c", ""], env=environment, check=False).returncode == 0
    except OSError:
        return False


def _distribution(directory: str) -> tuple[str, str]:
    """('aws-lambda-powertools', '3.37.0') of 'aws_lambda_powertools-3.37.0.dist-info'."""
    name, version = directory.removesuffix(".dist-info").rsplit("-", 1)
    return re.sub(r"[-_.]+", "-", name).lower(), version


@pytest.mark.slow
def test_the_built_layer_has_the_functions_code_and_pins_and_no_local_tooling(tmp_path: Path) -> None:
    sam, environment = _sam(), _build_environment()
    if sam is None:
        pytest.skip("no SAM CLI (make infra installs it in .venv-sam, then builds and checks the layer too)")
    if not _python312_runs(environment):
        pytest.skip("no runnable python3.12 (Lambda's runtime) to build the layer with")
    build = subprocess.run(
        [
            sam,
            "build",
            "SharedLayer",
            "--template",
            str(ROOT / "infra" / "template.yaml"),
            "--build-dir",
            str(tmp_path / "build"),
        ],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        check=False,
        timeout=900,
    )
    assert build.returncode == 0, f"sam build SharedLayer failed:\n{build.stdout}\n{build.stderr}"
    layer = tmp_path / "build" / "SharedLayer" / "python"
    top_level = {path.name for path in layer.iterdir()}

    strays = sorted(name for name in top_level if name.split("-")[0].split(".")[0].lower() in NOT_IN_LAYER)
    assert not strays, f"local or dev tooling in the built layer: {strays}"
    built_dunning = {
        path.name if path.is_dir() else path.stem
        for path in (layer / "dunning").iterdir()
        if path.name != "__init__.py"
    }
    assert not built_dunning & LOCAL_TOOLING, f"dunning/{sorted(built_dunning & LOCAL_TOOLING)} in the layer"
    assert built_dunning == _layer_parts()
    assert not list(layer.glob("dunning*.*-info")), "the dunning distribution's metadata is in the layer"
    assert not list((layer / "dunning").rglob("__pycache__"))

    installed = dict(_distribution(name) for name in top_level if name.endswith(".dist-info"))
    for requirement in LAYER_REQUIREMENTS.read_text(encoding="utf-8").split():
        name, version = requirement.split("==")
        name = re.sub(r"[-_.]+", "-", name.split("[")[0]).lower()
        assert installed.get(name) == version, f"{requirement}: the layer has {installed.get(name)!r}"
