"""The embedded stack's functions run with exactly the environment the template gives them (issue 11: one
source for each fact), and the simulator scans at the template's schedule."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, time
from typing import Any

import pytest

from dunning.local.embedded_aws import (
    FUNCTION_LOGICAL_IDS,
    LEGAL_TEAM_EMAIL,
    LOCAL_ENVIRONMENT,
    PHYSICAL_NAMES,
    POLICY_KEY,
    REGION,
    FunctionContainers,
    UnsupportedSchedule,
    function_environment,
    function_logical_ids,
    function_settings,
    load_template,
    scan_time,
    stack_environment,
)
from dunning.local.embedded_iam import StackIdentity, TemplateResolver
from dunning.local.embedded_sfn import SimulatedClock
from dunning.local.lambda_context import invoke_handler
from dunning.runtime.settings import EscalateSettings, ScanSettings

TEMPLATE = load_template()
SENDER = "Accounts Receivable <billing@example.com>"


def template_variables(logical_id: str) -> dict[str, Any]:
    """The function's variables as written in the template (Globals, then its own), unresolved."""
    shared = TEMPLATE["Globals"]["Function"]["Environment"]["Variables"]
    own = TEMPLATE["Resources"][logical_id]["Properties"].get("Environment", {}).get("Variables", {})
    return {**shared, **own}


def containers() -> FunctionContainers:
    return FunctionContainers(TEMPLATE, SENDER, SimulatedClock(datetime(2027, 1, 1, tzinfo=UTC)))


def test_every_function_of_the_template_is_in_the_embedded_stack() -> None:
    assert sorted(FUNCTION_LOGICAL_IDS.values()) == sorted(function_logical_ids(TEMPLATE))


@pytest.mark.parametrize("function", sorted(FUNCTION_LOGICAL_IDS))
def test_a_function_gets_every_variable_the_template_gives_it_and_nothing_else(function: str) -> None:
    logical_id = FUNCTION_LOGICAL_IDS[function]
    written = template_variables(logical_id)
    deployed = containers().deployed_environment(function)
    assert set(deployed) == set(written), logical_id
    running = containers().environment(function)
    local_only = set(running) - set(written)
    assert local_only <= set(LOCAL_ENVIRONMENT), (
        f"{function} gets {sorted(local_only)} the template does not give"
    )
    for name, value in deployed.items():
        expected = LOCAL_ENVIRONMENT.get(name, value)
        assert running[name] == expected, f"{function}: {name}"


@pytest.mark.parametrize("function", sorted(FUNCTION_LOGICAL_IDS))
def test_the_intrinsics_are_resolved_to_the_embedded_stacks_names(function: str) -> None:
    deployed = containers().deployed_environment(function)
    for name, value in deployed.items():
        assert "{" not in value and "Ref" not in value, f"{function}: {name} = {value}"
    assert deployed["LEDGER_TABLE"] == PHYSICAL_NAMES["LedgerTable"]
    if "INGEST_BUCKET" in deployed:
        assert deployed["INGEST_BUCKET"] == PHYSICAL_NAMES["IngestBucket"]
    if "STATE_MACHINE_ARN" in deployed:
        assert deployed["STATE_MACHINE_ARN"].endswith(
            f":stateMachine:{PHYSICAL_NAMES['CollectionsStateMachine']}:live"
        )
    if "LEGAL_TEAM_EMAIL" in deployed:
        assert deployed["LEGAL_TEAM_EMAIL"] == LEGAL_TEAM_EMAIL
    if "POLICY_KEY" in deployed:
        assert deployed["POLICY_KEY"] == POLICY_KEY == TEMPLATE["Parameters"]["PolicyKey"]["Default"]
    # every function's settings validate
    function_settings(TEMPLATE, FUNCTION_LOGICAL_IDS[function]).from_env(containers().environment(function))


def test_a_variable_whose_value_is_no_value_is_left_out() -> None:
    """LEGAL_TEAM_EMAIL is !If [HasLegalTeamEmail, !Ref LegalTeamEmail, !Ref AWS::NoValue]: the embedded
    stack is deployed with a legal team address; with the parameter's default (empty) it is absent."""
    assert containers().deployed_environment("dunning-escalate")["LEGAL_TEAM_EMAIL"] == LEGAL_TEAM_EMAIL
    defaults = TemplateResolver(
        TEMPLATE, StackIdentity("dunning", REGION, "123456789012"), {}, PHYSICAL_NAMES
    )
    assert "LEGAL_TEAM_EMAIL" not in function_environment(TEMPLATE, defaults, "EscalateFunction")


def test_the_local_settings_have_no_deployed_counterpart_but_the_quieter_log() -> None:
    written = {
        name for logical_id in FUNCTION_LOGICAL_IDS.values() for name in template_variables(logical_id)
    }
    assert set(LOCAL_ENVIRONMENT) & written == {"POWERTOOLS_LOG_LEVEL"}


def test_the_process_environment_is_every_functions_in_one() -> None:
    merged = stack_environment(TEMPLATE, SENDER)
    every = containers()
    for function in FUNCTION_LOGICAL_IDS:
        for name, value in every.environment(function).items():
            assert merged[name] == value, f"{function}: {name}"
    assert set(merged) == {name for function in FUNCTION_LOGICAL_IDS for name in every.environment(function)}


def test_functions_that_disagree_on_a_shared_variable_are_refused() -> None:
    template = copy.deepcopy(TEMPLATE)
    template["Resources"]["SendNoticeFunction"]["Properties"]["Environment"]["Variables"]["INGEST_BUCKET"] = (
        "other"
    )
    with pytest.raises(ValueError, match="INGEST_BUCKET differs"):
        stack_environment(template, SENDER)


# --- the scan's schedule ----------------------------------------------------------------------------------


def test_the_scan_runs_at_the_templates_schedule() -> None:
    assert TEMPLATE["Parameters"]["ScanSchedule"]["Default"] == "cron(0 7 * * ? *)"
    assert scan_time(TEMPLATE) == time(7, 0)


# Which expressions are a daily time: tests/unit/test_settings.py (one parser, `settings.daily_time`).
def test_the_schedules_expression_is_read_as_deployed() -> None:
    template = copy.deepcopy(TEMPLATE)
    template["Parameters"]["ScanSchedule"]["Default"] = "cron(30 5 * * ? *)"
    assert scan_time(template) == time(5, 30)
    template["Parameters"]["ScanSchedule"]["Default"] = "cron(0 7 ? * MON-FRI *)"
    with pytest.raises(UnsupportedSchedule, match="ScanSchedule"):
        scan_time(template)


def test_a_function_runs_with_its_own_settings_model_only() -> None:
    every = containers()
    env = invoke_handler(lambda event, context: every.runtime(EscalateSettings), {}, "dunning-escalate")
    assert type(env.settings) is EscalateSettings
    with pytest.raises(
        RuntimeError, match="dunning-escalate reads ScanSettings; its settings are EscalateSettings"
    ):
        invoke_handler(lambda event, context: every.runtime(ScanSettings), {}, "dunning-escalate")
