"""Country profiles: the data-protection law a site follows, its clauses and its defaults (package data)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from sovkit.data import load_yaml, names_in

REQUIRED_CLAUSES = ("cross_border_transfer", "security_safeguards", "breach_notification", "retention")


class _ProfileModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Law(_ProfileModel):
    short_name: str
    title: str
    year: int
    regulator: str
    commencement: str | None
    source: str


class Clause(_ProfileModel):
    section: str
    cite: str
    title: str
    summary: str


class ProfileDefault(_ProfileModel):
    value: int | None
    minimum: int | None = None
    set_by: Literal["law", "regulation", "operator"]
    clause: str | None
    basis: str


class ProfileDefaults(_ProfileModel):
    log_retention_days: ProfileDefault
    breach_notification_hours: ProfileDefault


class CountryProfile(_ProfileModel):
    id: str
    country: str
    country_name: str
    law: Law
    clauses: dict[str, Clause]
    defaults: ProfileDefaults = Field(description="Values sovkit fills in when a stack sets none")

    def citation(self, clause_id: str) -> str:
        return self.clauses[clause_id].cite


def profile_ids() -> list[str]:
    return names_in("profiles")


def load_profile(profile_id: str) -> CountryProfile:
    """The profile of that id; KeyError when there is none (callers report the choices)."""
    if profile_id not in profile_ids():
        raise KeyError(profile_id)
    profile = CountryProfile.model_validate(load_yaml(f"profiles/{profile_id}.yaml"))
    missing = [c for c in REQUIRED_CLAUSES if c not in profile.clauses]
    if missing or profile.id != profile_id:
        raise ValueError(f"country profile {profile_id} is incomplete: missing clauses {missing} or id mismatch")
    return profile
