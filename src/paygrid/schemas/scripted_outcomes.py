"""Scripted outcomes of a saved method's next charges (test helpers, issue 14 §2)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, Strict

from paygrid.domain.scripted_outcomes import MAX_OUTCOMES, ScriptedOutcome
from paygrid.schemas.common import RequestModel


class OutcomesScript(RequestModel):
    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        json_schema_extra={
            "examples": [{"outcomes": ["insufficient_funds", "insufficient_funds", "succeeded"]}]
        },
    )

    outcomes: list[Annotated[ScriptedOutcome, Strict(False)]] = Field(
        min_length=1,
        max_length=MAX_OUTCOMES,
        description="How the method's next charges end, in order, one per charge: "
        "`succeeded`, a decline code, or `authentication_required`. Appended to what is "
        "still scripted; once used up, the card's own behaviour applies again.",
    )


class ScriptedOutcomes(BaseModel):
    object: Literal["payment_method_outcomes"] = "payment_method_outcomes"
    payment_method: str
    outcomes: list[ScriptedOutcome] = Field(
        description="What is still scripted, in the order charges take it."
    )
