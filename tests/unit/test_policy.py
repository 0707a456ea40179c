from __future__ import annotations

import pytest

from dunning.domain.policy import DEFAULT_POLICY, PolicyError, parse_policy


def test_an_empty_policy_is_the_default() -> None:
    assert parse_policy("") == DEFAULT_POLICY
    assert DEFAULT_POLICY.customer_timezone_default == "UTC"


def test_yaml_and_json_both_work() -> None:
    assert parse_policy("default_locale: ro\n").default_locale == "ro"
    assert (
        parse_policy('{"imports": {"xero_date_format": "MM/DD/YYYY"}}').imports.xero_date_format
        == "MM/DD/YYYY"
    )


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("business_timezone: Mars/Base\n", "business_timezone"),
        ("imports:\n  xero_date_format: YYYY/MM/DD\n", "imports.xero_date_format"),
        ("unknown_setting: 1\n", "unknown_setting"),
        ("- a list\n", "mapping"),
        ("a: [\n", "not valid JSON or YAML"),
    ],
)
def test_bad_policies_say_where(text: str, words: str) -> None:
    with pytest.raises(PolicyError, match=words.replace(".", r"\.")):
        parse_policy(text, "policy.yaml")
