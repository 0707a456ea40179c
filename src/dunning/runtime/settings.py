"""Function settings, read once from the environment into a validated model."""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import BaseModel, ConfigDict, Field


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True, populate_by_name=True, extra="ignore")

    table_name: str = Field(alias="LEDGER_TABLE", min_length=1)
    ingest_bucket: str = Field(alias="INGEST_BUCKET", min_length=1)
    policy_key: str | None = Field(default=None, alias="POLICY_KEY")
    # The validated policy in force (written by the ingest function; read by every function).
    active_policy_key: str | None = Field(default=None, alias="ACTIVE_POLICY_KEY")
    rejected_prefix: str = Field(default="rejected/", alias="REJECTED_PREFIX")
    # Only the functions that need them get these.
    state_machine_arn: str | None = Field(default=None, alias="STATE_MACHINE_ARN")
    ses_configuration_set: str | None = Field(default=None, alias="SES_CONFIGURATION_SET")
    legal_bucket: str | None = Field(default=None, alias="LEGAL_BUCKET")
    legal_team_email: str | None = Field(default=None, alias="LEGAL_TEAM_EMAIL")
    # Local runs only: links to packets become "<base><case_id>.zip" instead of presigned S3 URLs.
    local_packet_links: str | None = Field(default=None, alias="LOCAL_PACKET_LINKS")
    packet_link_expiry_hours: int = Field(default=72, ge=1, le=168, alias="PACKET_LINK_EXPIRY_HOURS")
    # Deployed: the role whose short session signs the packet links (its end is the links' latest expiry).
    packet_link_signer_role_arn: str | None = Field(default=None, alias="PACKET_LINK_SIGNER_ROLE_ARN")

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Settings:
        return cls.model_validate(dict(environ))
