"""Each function reads its own settings model (dunning.runtime.settings), and the template gives each function
exactly what its model needs; the daily scan's time has one source, the stack's ScanSchedule."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import time
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from dunning.domain.policy import DEFAULT_POLICY, Policy, parse_policy
from dunning.local.embedded_aws import (
    PHYSICAL_NAMES,
    REGION,
    STACK_PARAMETERS,
    function_environment,
    function_logical_ids,
    function_settings,
    load_template,
    scan_time,
    template_resolver,
)
from dunning.local.embedded_iam import StackIdentity, TemplateResolver
from dunning.runtime import wiring
from dunning.runtime.settings import (
    FUNCTION_SETTINGS,
    BucketSettings,
    EscalateSettings,
    LadderSettings,
    MissingSettings,
    ScanSettings,
    SendNoticeSettings,
    SesEventsSettings,
    Settings,
    UnsupportedSchedule,
    daily_time,
)
from dunning.runtime.wiring import Runtime

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = load_template()
FUNCTIONS = function_logical_ids(TEMPLATE)
# Read by Powertools itself, not by our settings.
POWERTOOLS = re.compile(r"POWERTOOLS_[A-Z_]+")


def _defaults() -> TemplateResolver:
    """The template's parameters at their defaults (LegalTeamEmail empty: LEGAL_TEAM_EMAIL is left out)."""
    return TemplateResolver(TEMPLATE, StackIdentity("dunning", REGION, "123456789012"), {}, PHYSICAL_NAMES)


def _embedded() -> Any:
    """As the embedded stack is deployed (STACK_PARAMETERS, the sender's domain)."""
    return template_resolver(TEMPLATE, DEFAULT_POLICY.sender)


# --- the template and the models agree ----------------------------------------------------------------------


@pytest.mark.parametrize("resolver", [_defaults, _embedded], ids=["defaults", "embedded"])
@pytest.mark.parametrize("logical_id", FUNCTIONS)
def test_each_functions_environment_is_exactly_what_its_settings_read(logical_id: str, resolver: Any) -> None:
    model = function_settings(TEMPLATE, logical_id)
    environment = function_environment(TEMPLATE, resolver(), logical_id)
    settings = model.from_env(environment)  # validates
    assert isinstance(settings, model)
    assert sorted(model.required_variables() - set(environment)) == [], f"{logical_id} is not given these"
    unread = {name for name in environment if not POWERTOOLS.fullmatch(name)} - model.variables()
    assert sorted(unread) == [], (
        f"{logical_id} is given variables its settings ({model.__name__}) do not read"
    )


def test_the_embedded_stack_sets_a_parameter_the_defaults_leave_out() -> None:
    """The two resolutions above differ where they should: LEGAL_TEAM_EMAIL (optional in the models)."""
    assert "LegalTeamEmail" in STACK_PARAMETERS
    assert "LEGAL_TEAM_EMAIL" not in function_environment(TEMPLATE, _defaults(), "EscalateFunction")
    assert "LEGAL_TEAM_EMAIL" in function_environment(TEMPLATE, _embedded(), "EscalateFunction")


def test_every_function_has_a_model_and_every_model_a_function() -> None:
    folders = {path.parent.name for path in (ROOT / "functions").glob("*/app.py")}
    assert set(FUNCTION_SETTINGS) == folders
    assert {function_settings(TEMPLATE, logical_id) for logical_id in FUNCTIONS} == set(
        FUNCTION_SETTINGS.values()
    )


@pytest.mark.parametrize("folder", sorted(FUNCTION_SETTINGS))
def test_each_handler_reads_its_own_model(folder: str) -> None:
    source = (ROOT / "functions" / folder / "app.py").read_text(encoding="utf-8")
    calls = set(re.findall(r"\bruntime\((\w*)\)", source))
    assert calls == {FUNCTION_SETTINGS[folder].__name__}, folder


def test_a_missing_variable_fails_when_the_settings_are_read() -> None:
    environment = function_environment(TEMPLATE, _defaults(), "ScanOverdueFunction")
    del environment["STATE_MACHINE_ARN"]
    with pytest.raises(ValidationError, match="STATE_MACHINE_ARN"):
        ScanSettings.from_env(environment)


# --- one source for the scan time ---------------------------------------------------------------------------


def test_the_functions_that_time_the_ladder_get_the_stacks_schedule() -> None:
    timers = {i for i in FUNCTIONS if issubclass(function_settings(TEMPLATE, i), LadderSettings)}
    # What calls dunning.domain.ladder (the scan: for the next scan's instant, up to which it reads).
    assert timers == {"EscalateFunction", "SendNoticeFunction", "ScanOverdueFunction"}
    for logical_id in FUNCTIONS:
        variables = (
            TEMPLATE["Resources"][logical_id]["Properties"].get("Environment", {}).get("Variables", {})
        )
        times_the_ladder = issubclass(function_settings(TEMPLATE, logical_id), LadderSettings)
        assert ("SCAN_SCHEDULE" in variables) is times_the_ladder, logical_id
        if times_the_ladder:
            assert variables["SCAN_SCHEDULE"] == {"Ref": "ScanSchedule"}, logical_id
            assert variables["SEND_SPREAD_MINUTES"] == {"Ref": "SendSpreadMinutes"}, logical_id
            environment = function_environment(TEMPLATE, _embedded(), logical_id)
            assert daily_time(environment["SCAN_SCHEDULE"]) == scan_time(TEMPLATE) == DEFAULT_POLICY.scan_time


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("cron(0 7 * * ? *)", time(7, 0)),
        ("cron(30 5 * * ? *)", time(5, 30)),
        ("cron(0 23 ? * * *)", time(23, 0)),
        ("cron(05 09 * * ? *)", time(9, 5)),
        ("cron(59 0 * * ? *)", time(0, 59)),
    ],
)
def test_a_daily_cron_is_a_time_of_day_and_the_template_accepts_it(expression: str, expected: time) -> None:
    assert daily_time(expression) == expected
    assert re.fullmatch(TEMPLATE["Parameters"]["ScanSchedule"]["AllowedPattern"], expression)


@pytest.mark.parametrize(
    "expression",
    [
        "rate(1 day)",
        "at(2027-01-01T07:00:00)",
        "cron(0 7 ? * MON-FRI *)",
        "cron(0 7,19 * * ? *)",
        "cron(0 24 * * ? *)",
        "cron(60 7 * * ? *)",
        "cron(0 7 * * ? 2027)",
        "",
    ],
)
def test_anything_else_is_refused_by_the_parser_and_the_template(expression: str) -> None:
    with pytest.raises(UnsupportedSchedule, match="ScanSchedule"):
        daily_time(expression)
    assert not re.fullmatch(TEMPLATE["Parameters"]["ScanSchedule"]["AllowedPattern"], expression)
    environment = {
        **function_environment(TEMPLATE, _defaults(), "EscalateFunction"),
        "SCAN_SCHEDULE": expression,
    }
    with pytest.raises(ValidationError, match="ScanSchedule"):
        EscalateSettings.from_env(environment)


# --- the runtime --------------------------------------------------------------------------------------------


class _Active:
    def __init__(self, policy: Policy) -> None:
        self.policy = policy

    def current(self) -> Policy:
        return self.policy


def _runtime(model: type[Settings], policy: Policy, logical_id: str) -> Runtime[Any]:
    env = Runtime(model.from_env(function_environment(TEMPLATE, _defaults(), logical_id)))
    env.__dict__["active_policy"] = _Active(policy)
    return env


def test_a_function_that_times_the_ladder_gets_the_policy_at_the_stacks_scan_time() -> None:
    old_file = parse_policy('scan_time: "05:30"\nmin_gap_days: 4\n')
    policy = _runtime(EscalateSettings, old_file, "EscalateFunction").policy
    assert policy.scan_time == time(7, 0)  # the template's ScanSchedule, not the file's
    assert policy.min_gap_days == 4  # the rest is the file's
    assert policy.send_spread_minutes == 240  # the template's SendSpreadMinutes
    stack = {"scan_time", "send_spread_minutes"}
    assert policy.model_dump(exclude=stack) == old_file.model_dump(exclude=stack)
    sending = _runtime(SendNoticeSettings, old_file, "SendNoticeFunction").policy
    assert (sending.scan_time, sending.send_spread_minutes) == (time(7, 0), 240)


def test_a_policy_already_at_the_stacks_scan_time_and_spread_is_handed_out_as_it_is() -> None:
    """The built-in policy (and the demo's) is at 07:00, the template's default: nothing changes there."""
    assert DEFAULT_POLICY.scan_time == scan_time(TEMPLATE)
    at_the_stacks = DEFAULT_POLICY.model_copy(update={"send_spread_minutes": 240})
    assert _runtime(EscalateSettings, at_the_stacks, "EscalateFunction").policy is at_the_stacks


def test_a_part_of_the_runtime_a_function_lacks_says_what_is_missing() -> None:
    env = Runtime(
        SesEventsSettings.from_env(function_environment(TEMPLATE, _defaults(), "SesEventsFunction"))
    )
    with pytest.raises(MissingSettings, match=r"the legal desk needs LegalSettings \(.*LEGAL_BUCKET.*\)"):
        env.legal_desk()
    with pytest.raises(MissingSettings, match="INGEST_BUCKET") as raised:
        _ = env.policy
    assert "SesEventsSettings" in str(raised.value)
    scan = Runtime(ScanSettings.from_env(function_environment(TEMPLATE, _defaults(), "ScanOverdueFunction")))
    assert isinstance(scan.settings.needs(BucketSettings, "the policy"), ScanSettings)
    with pytest.raises(MissingSettings, match="SES_CONFIGURATION_SET"):
        _ = scan.mailer


@pytest.fixture
def deployed(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A deployed container of the send function: its environment is the process's."""
    for name, value in function_environment(TEMPLATE, _defaults(), "SendNoticeFunction").items():
        monkeypatch.setenv(name, value)
    wiring.use_runtime_provider(None)
    yield
    wiring.use_runtime_provider(None)


@pytest.mark.usefixtures("deployed")
def test_deployed_a_function_reads_its_settings_once() -> None:
    env = wiring.runtime(SendNoticeSettings)
    assert type(env.settings) is SendNoticeSettings
    assert env.settings.scan_time == time(7, 0)
    assert wiring.runtime(SendNoticeSettings) is env


@pytest.mark.usefixtures("deployed")
def test_deployed_a_function_without_a_variable_its_model_needs_fails_to_start() -> None:
    with pytest.raises(ValidationError, match="STEP_FUNCTION_ARN"):
        wiring.runtime(ScanSettings)
