"""Test clock objects (Stripe's ``test_helpers.test_clock``, as ``test_clock``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt

from paygrid.domain.test_clocks import TestClockStatus
from paygrid.schemas.common import FreeText, RequestModel, unix

if TYPE_CHECKING:
    from paygrid.db.test_clocks import TestClockRow

# 2000-01-01T00:00:00Z to 2100-01-01T00:00:00Z: wide enough for any test, and billing date
# arithmetic never leaves the range a datetime holds.
EARLIEST_FROZEN_TIME: Final = 946_684_800
LATEST_FROZEN_TIME: Final = 4_102_444_800

FrozenTime = Annotated[
    StrictInt,
    Field(
        ge=EARLIEST_FROZEN_TIME,
        le=LATEST_FROZEN_TIME,
        description="Unix time in seconds, from 2000-01-01 to 2100-01-01.",
        examples=[1_830_297_600],
    ),
]


class TestClockCreate(RequestModel):
    __test__ = False
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"frozen_time": 1_830_297_600, "name": "Annual plan"}]}
    )

    frozen_time: FrozenTime
    name: FreeText | None = Field(default=None, max_length=300, examples=["Annual plan"])


class TestClockAdvance(RequestModel):
    __test__ = False
    model_config = ConfigDict(json_schema_extra={"examples": [{"frozen_time": 1_833_000_000}]})

    frozen_time: FrozenTime = Field(
        description="The time to advance to: after the clock's current frozen_time."
    )


class AdvancingDetails(BaseModel):
    target_frozen_time: int


class StatusDetails(BaseModel):
    advancing: AdvancingDetails | None = Field(
        default=None, description="While advancing: where to."
    )


class TestClock(BaseModel):
    __test__ = False

    id: str = Field(examples=["clock_01JD2Y3ZQ8W5Z3K4M6N7P8Q9R0"])
    object: Literal["test_clock"] = "test_clock"
    created: int
    deletes_after: int
    frozen_time: int
    livemode: Literal[False] = False
    name: str | None
    status: TestClockStatus
    status_details: StatusDetails

    @classmethod
    def from_row(cls, row: TestClockRow) -> TestClock:
        target = unix(row.advancing_to)
        return cls(
            id=row.id,
            created=unix(row.created_at) or 0,
            deletes_after=unix(row.deletes_after) or 0,
            frozen_time=unix(row.frozen_time) or 0,
            name=row.name,
            status=row.status,
            status_details=StatusDetails(
                advancing=None if target is None else AdvancingDetails(target_frozen_time=target)
            ),
        )
