"""Customer objects."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field

from paygrid.schemas.common import Email, FreeText, Metadata, RequestModel, unix

if TYPE_CHECKING:
    from paygrid.db.customers import CustomerRow


class CustomerCreate(RequestModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"email": "ada@example.com", "name": "Ada Lovelace", "phone": "+2348012345678"}
            ]
        }
    )

    email: Email | None = Field(default=None, max_length=254, examples=["ada@example.com"])
    name: FreeText | None = Field(default=None, max_length=256, examples=["Ada Lovelace"])
    phone: FreeText | None = Field(default=None, max_length=32, examples=["+2348012345678"])
    metadata: Metadata = Field(default_factory=dict)


class CustomerUpdate(RequestModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"name": "Ada King", "metadata": {"tier": "gold"}}]}
    )

    email: Email | None = Field(default=None, max_length=254)
    name: FreeText | None = Field(default=None, max_length=256)
    phone: FreeText | None = Field(default=None, max_length=32)
    metadata: Metadata | None = None


class Customer(BaseModel):
    id: str = Field(examples=["cus_01JD2Y3ZQ8W5Z3K4M6N7P8Q9R0"])
    object: Literal["customer"] = "customer"
    email: str | None
    name: str | None
    phone: str | None
    metadata: dict[str, str]
    livemode: bool
    created: int

    @classmethod
    def from_row(cls, row: CustomerRow) -> Customer:
        return cls(
            id=row.id,
            email=row.email,
            name=row.name,
            phone=row.phone,
            metadata=row.metadata,
            livemode=row.livemode,
            created=unix(row.created_at) or 0,
        )
