from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, ConfigDict, Field

from siyu.scoring.config import ScoringConfig


class RfmCutsRead(BaseModel):
    """The cut points scoring uses now: quintiles of the last full run, or the fixed ones the settings give."""

    recency_days: list[int] = Field(description="R 5 if days since last order <= 1st ... R 1 if > 4th")
    frequency: list[int] = Field(description="F 1 if paid orders <= 1st ... F 5 if > 4th")
    monetary_yuan: list[float] = Field(description="M 1 if net paid <= 1st ... M 5 if > 4th")
    customers: int = Field(description="customers the quintiles were computed over")
    computed_at: dt.datetime | None


class ScoringSettingsRead(BaseModel):
    config: ScoringConfig
    rfm_cuts: RfmCutsRead | None = Field(description="null until the first run that met a customer")
    updated_at: dt.datetime | None = Field(description="when the settings were last saved; null: defaults")


class ContactScoresRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    contact_id: int
    lifecycle_stage: str | None
    r_score: int | None
    f_score: int | None
    m_score: int | None
    value_tier: str | None
    intention_score: float | None
    intention_level: str | None
    transaction_stage: str | None
    reasons: dict[str, list[str]] = Field(
        description="per model (lifecycle, rfm, value_tier, intention, transaction_stage), lines in plain words"
    )
    computed_at: dt.datetime
    stored: bool = Field(
        default=True, description="false: not scored yet by a run, computed for this answer (segments do not see it)"
    )


class RecomputeResult(BaseModel):
    contacts: int = Field(description="contacts scored")
