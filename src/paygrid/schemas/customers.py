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
    test_clock: str | None = Field(
        default=None,
        max_length=64,
        description="Test mode only: the id of a test clock (`clock_...`) this customer and "
        "everything of it runs on. Set at creation only.",
    )


class InvoiceSettingsUpdate(RequestModel):
    default_payment_method: str | None = Field(
        default=None,
        max_length=64,
        description="A payment method attached to this customer, which invoices charge "
        'off-session; null (or "") clears it.',
        examples=["pm_01JD2Y3ZQ8W5Z3K4M6N7P8Q9R0"],
    )


class InvoiceSettings(BaseModel):
    default_payment_method: str | None = Field(
        description="What invoices charge off-session; cleared when the method is detached."
    )


class CustomerUpdate(RequestModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"name": "Ada King", "metadata": {"tier": "gold"}}]}
    )

    email: Email | None = Field(default=None, max_length=254)
    name: FreeText | None = Field(default=None, max_length=256)
    phone: FreeText | None = Field(default=None, max_length=32)
    metadata: Metadata | None = None
    invoice_settings: InvoiceSettingsUpdate | None = None


class Customer(BaseModel):
    id: str = Field(examples=["cus_01JD2Y3ZQ8W5Z3K4M6N7P8Q9R0"])
    object: Literal["customer"] = "customer"
    email: str | None
    name: str | None
    phone: str | None
    metadata: dict[str, str]
    livemode: bool
    created: int
    test_clock: str | None = Field(description="The test clock it runs on, if any.")
    invoice_settings: InvoiceSettings = InvoiceSettings(default_payment_method=None)

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
            test_clock=row.test_clock_id,
            invoice_settings=InvoiceSettings(default_payment_method=row.default_payment_method_id),
        )
