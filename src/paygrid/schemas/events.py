"""Event objects: what changed, with a snapshot of the object as it was then."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, Field

from paygrid.schemas.common import unix

if TYPE_CHECKING:
    from paygrid.db.events import EventRow


class EventData(BaseModel):
    object: dict[str, Any] = Field(
        description="The object as the API rendered it when the event happened."
    )


class Event(BaseModel):
    id: str = Field(examples=["evt_01JD2Y3ZQ8W5Z3K4M6N7P8Q9R0"])
    object: Literal["event"] = "event"
    type: str = Field(examples=["payment.succeeded"])
    created: int = Field(description="Unix time.")
    livemode: bool
    data: EventData

    @classmethod
    def from_row(cls, row: EventRow) -> Event:
        return cls(
            id=row.id,
            type=row.type,
            created=unix(row.created_at) or 0,
            livemode=row.livemode,
            data=EventData(object=row.data["object"]),
        )
