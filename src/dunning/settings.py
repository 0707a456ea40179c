"""Function settings, read once from the environment into a validated model."""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import BaseModel, ConfigDict, Field


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True, populate_by_name=True, extra="ignore")

    table_name: str = Field(alias="LEDGER_TABLE", min_length=1)
    ingest_bucket: str = Field(alias="INGEST_BUCKET", min_length=1)
    policy_key: str | None = Field(default=None, alias="POLICY_KEY")
    rejected_prefix: str = Field(default="rejected/", alias="REJECTED_PREFIX")
    # Only the functions that need them get these.
    state_machine_arn: str | None = Field(default=None, alias="STATE_MACHINE_ARN")
    ses_configuration_set: str | None = Field(default=None, alias="SES_CONFIGURATION_SET")

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Settings:
        return cls.model_validate(dict(environ))
