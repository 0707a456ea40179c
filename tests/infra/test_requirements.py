"""The Lambda layer installs exactly the runtime pins of pyproject.toml, less what Lambda itself provides."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# moto only backs the local, embedded AWS. boto3 *is* in the layer although Lambda ships one: the X-Ray
# SDK pulls botocore into the layer, and a layer botocore next to the runtime's older boto3 could mismatch.
NOT_IN_LAYER = {"moto"}


def _name(requirement: str) -> str:
    """The normalised distribution name of a requirement such as 'aws-lambda-powertools[tracer]==3.37.0'."""
    name = re.split(r"[\[<>=!~;@\s]", requirement.strip(), maxsplit=1)[0]
    return re.sub(r"[-_.]+", "-", name).lower()


def _runtime_pins() -> list[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    dependencies: list[str] = project["dependencies"]
    return dependencies


def _layer_requirements() -> list[str]:
    lines = (ROOT / "src" / "requirements.txt").read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.strip().startswith("#")]


def test_layer_requirements_are_the_runtime_pins_less_what_lambda_provides() -> None:
    expected = {pin for pin in _runtime_pins() if _name(pin) not in NOT_IN_LAYER}
    layer = _layer_requirements()
    assert len(layer) == len(set(layer)), f"duplicate lines in src/requirements.txt: {layer}"
    missing, extra = sorted(expected - set(layer)), sorted(set(layer) - expected)
    assert not missing and not extra, (
        "src/requirements.txt must list exactly pyproject.toml's [project].dependencies without "
        f"{sorted(NOT_IN_LAYER)}; missing: {missing}, extra: {extra}"
    )


def test_the_excluded_packages_are_runtime_dependencies() -> None:
    """An exclusion that no longer matches a dependency (a rename, a typo) would hide a real difference."""
    assert {_name(pin) for pin in _runtime_pins()} >= NOT_IN_LAYER


def test_every_layer_requirement_is_an_exact_pin() -> None:
    loose = [
        line for line in _layer_requirements() if not re.fullmatch(r"[^=<>!~;\s]+==[^=<>!~;,\s*]+", line)
    ]
    assert not loose, f"layer requirements must be pinned with ==: {loose}"
