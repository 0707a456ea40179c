"""The Lambda layer installs exactly the runtime pins of pyproject.toml; local tooling is an extra."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
LAYER_REQUIREMENTS = ROOT / "infra" / "layer" / "requirements.txt"
# What the functions never import: the embedded AWS (moto) is local tooling, the rest are dev tools. boto3
# *is* a runtime pin and in the layer although Lambda ships one: the X-Ray SDK pulls botocore into the layer,
# and a layer botocore next to the runtime's older boto3 could mismatch.
NOT_FOR_LAMBDA = {"moto", "pytest", "hypothesis", "ruff", "mypy", "cfn-lint", "import-linter", "pypdf"}


def _name(requirement: str) -> str:
    """The normalised distribution name of a requirement such as 'aws-lambda-powertools[tracer]==3.37.0'."""
    name = re.split(r"[\[<>=!~;@\s]", requirement.strip(), maxsplit=1)[0]
    return re.sub(r"[-_.]+", "-", name).lower()


def _project() -> dict[str, Any]:
    project: dict[str, Any] = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    return project


def _runtime_pins() -> list[str]:
    dependencies: list[str] = _project()["dependencies"]
    return dependencies


def _layer_requirements() -> list[str]:
    lines = LAYER_REQUIREMENTS.read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.strip().startswith("#")]


def test_layer_requirements_are_the_runtime_pins() -> None:
    expected = set(_runtime_pins())
    layer = _layer_requirements()
    assert len(layer) == len(set(layer)), f"duplicate lines in {LAYER_REQUIREMENTS.name}: {layer}"
    missing, extra = sorted(expected - set(layer)), sorted(set(layer) - expected)
    assert not missing and not extra, (
        "infra/layer/requirements.txt must list exactly pyproject.toml's [project].dependencies; "
        f"missing: {missing}, extra: {extra}"
    )


def test_no_runtime_dependency_is_local_or_dev_tooling() -> None:
    strays = sorted(pin for pin in _runtime_pins() if _name(pin) in NOT_FOR_LAMBDA)
    assert not strays, (
        f"{strays} in [project].dependencies would be installed with the Lambda-facing package (and the "
        "layer): moto belongs in the `local` extra, test and lint tools in `dev`"
    )


def test_the_local_extra_brings_the_embedded_aws_and_the_dev_extra_brings_the_local_one() -> None:
    extras: dict[str, list[str]] = _project()["optional-dependencies"]
    assert "moto" in {_name(pin) for pin in extras["local"]}, "`dunning[local]` must install moto"
    # `make test` installs the dev extra only: the suite runs the simulator, so dev includes local.
    assert "dunning[local]" in extras["dev"]
    # Local tooling needs nothing from dev: `make smoke` runs `dunning simulate` with the local extra alone.
    assert not {_name(pin) for pin in extras["local"]} & (NOT_FOR_LAMBDA - {"moto"})


def test_every_layer_requirement_is_an_exact_pin() -> None:
    loose = [
        line for line in _layer_requirements() if not re.fullmatch(r"[^=<>!~;\s]+==[^=<>!~;,\s*]+", line)
    ]
    assert not loose, f"layer requirements must be pinned with ==: {loose}"
