"""The moto internals the embedded AWS patches or reads (dunning.local.moto_internals) are still there, as we
rely on them, in the installed moto: an upgrade that moves or changes one fails here, naming it."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from dunning.local import moto_internals
from dunning.local.moto_internals import Kind, MotoInternal

PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"


def pinned_versions() -> set[str]:
    """Every `moto[...]==X` pin in pyproject.toml (the runtime dependency and the dev extra)."""
    project = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["project"]
    requirements = [*project.get("dependencies", [])]
    for extra in project.get("optional-dependencies", {}).values():
        requirements.extend(extra)
    return {
        match.group(1)
        for requirement in requirements
        if (match := re.fullmatch(r"moto(?:\[[^\]]*\])?==(\S+)", requirement.replace(" ", "")))
    }


def version_note() -> str:
    pins = ", ".join(sorted(pinned_versions())) or "none found"
    return (
        f"installed moto {moto_internals.installed_version()}, pyproject.toml pins moto=={pins}; "
        "these internals were written against the pinned version: adapt dunning.local.moto_internals and the "
        "code using it (embedded_sfn, embedded_ses, embedded_aws) to the new moto, or keep the pin"
    )


def test_moto_is_pinned_to_the_installed_version() -> None:
    pins = pinned_versions()
    assert len(pins) == 1, f"moto is pinned to more than one version (or none): {sorted(pins)}"
    assert pins == {moto_internals.installed_version()}, version_note()


@pytest.mark.parametrize("internal", moto_internals.ALL, ids=lambda internal: internal.path)
def test_each_moto_internal_is_still_as_we_rely_on_it(internal: MotoInternal) -> None:
    problem = internal.problem()
    assert problem is None, f"{problem} (used for: {internal.purpose}) -- {version_note()}"


def test_the_list_covers_what_the_simulator_patches() -> None:
    patched = {
        moto_internals.EXECUTION_START,
        moto_internals.EXECUTION_LOGIC,
        moto_internals.WAIT_EVAL_BODY,
        moto_internals.LAMBDA_CLIENT,
        moto_internals.RETRY_TIME,
        moto_internals.RETRY_JITTER_RANDOM,
        moto_internals.HANDLE_RETRY,
        moto_internals.SESV2_SEND_EMAIL,
    }
    assert patched <= set(moto_internals.ALL)
    assert len({internal.name for internal in moto_internals.ALL}) == len(moto_internals.ALL)


def test_no_module_of_the_embedded_aws_imports_moto_internals_directly() -> None:
    """Only moto_internals names moto's private modules; the rest takes them from there (mock_aws, moto's
    public entry point, excepted)."""
    local = Path(moto_internals.__file__).parent
    offenders = [
        f"{path.name}: {line.strip()}"
        for path in sorted(local.glob("*.py"))
        if path.name != "moto_internals.py"
        for line in path.read_text(encoding="utf-8").splitlines()
        if re.match(r"\s*(from|import) moto\b", line)
        and not re.match(r"\s*from moto import mock_aws\b", line)
    ]
    assert offenders == []


# --- the guard itself notices drift -----------------------------------------------------------------------


def test_a_changed_signature_is_reported() -> None:
    changed = MotoInternal(
        "moto.stepfunctions.parser.asl.component.state.exec.state_task.lambda_eval_utils",
        "boto_client_for",
        Kind.FUNCTION,
        "test",
        ("service", "region"),
    )
    assert changed.problem() == (
        f"{changed.name}: parameters are ('region', 'service', 'state_credentials'), "
        "expected ('service', 'region')"
    )


def test_a_missing_function_module_or_field_is_reported() -> None:
    gone = MotoInternal("moto.ses.models", "SESBackend.no_such_method", Kind.FUNCTION, "test")
    assert gone.problem() == "moto.ses.models.SESBackend.no_such_method: no longer exists"
    moved = MotoInternal("moto.no_such_module", "thing", Kind.OBJECT, "test")
    assert (moved.problem() or "").startswith("moto.no_such_module.thing: cannot be imported")
    field = MotoInternal("moto.ses.models", "SESBackend.no_such_field", Kind.FIELD, "test")
    assert field.problem() == (
        "moto.ses.models.SESBackend.no_such_field: "
        "SESBackend no longer declares or assigns self.no_such_field"
    )


def test_the_failure_message_names_the_pinned_and_the_installed_version() -> None:
    (pin,) = pinned_versions()
    assert f"pyproject.toml pins moto=={pin}" in version_note()
    assert f"installed moto {moto_internals.installed_version()}" in version_note()


# --- the Lambda client of a Task state --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [
        (("eu-west-1", "lambda"), {}),  # boto_client_for(region, service, ...): the region comes first
        (
            (),
            {"service": "lambda", "region": "eu-west-1", "state_credentials": None},
        ),  # as moto 5.2.5 calls it
        (("eu-west-1",), {"service": "lambda"}),
    ],
)
def test_a_tasks_lambda_client_is_the_in_process_one_however_it_is_called(
    args: tuple[object, ...], kwargs: dict[str, object]
) -> None:
    from datetime import UTC, datetime

    from dunning.local.embedded_sfn import Scheduler, SimulatedClock, simulated_step_functions

    scheduler = Scheduler(SimulatedClock(datetime(2027, 1, 1, tzinfo=UTC)))
    with simulated_step_functions(scheduler, {}):
        client_for = moto_internals.LAMBDA_CLIENT.get()
        assert type(client_for(*args, **kwargs)).__name__ == "_InProcessLambda"


def test_a_tasks_other_clients_are_motos_own() -> None:
    """The region is not the service: before the fix, `args[0] == "lambda"` looked at the region."""
    from datetime import UTC, datetime

    from dunning.local.embedded_sfn import Scheduler, SimulatedClock, simulated_step_functions

    scheduler = Scheduler(SimulatedClock(datetime(2027, 1, 1, tzinfo=UTC)))
    with simulated_step_functions(scheduler, {}):
        client_for = moto_internals.LAMBDA_CLIENT.get()
        client = client_for("lambda", "sqs")  # a region named "lambda": still moto's SQS client
        assert type(client).__name__ != "_InProcessLambda"
        assert client.meta.service_model.service_name == "sqs"
        with pytest.raises(TypeError):
            client_for("eu-west-1", "sqs", None, "unexpected")  # moto's own signature is enforced
