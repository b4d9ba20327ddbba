"""Report objects: the payments summary, and report runs (Stripe's ``reporting.report_run``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr

from paygrid.domain.reports import ReportRunStatus, ReportType
from paygrid.schemas.common import RequestModel, unix

if TYPE_CHECKING:
    from paygrid.db.reports import ReportRunRow

# A cell of a summary row: a dimension's text (or null: a payment with no connector), or a
# count or amount in minor units.
Cell = str | int | None
Moment = Annotated[
    StrictInt | Annotated[StrictStr, Field(pattern=r"^([0-9]{1,11}|[0-9]{4}-[0-9]{2}-[0-9]{2})$")],
    Field(description="Unix seconds, or a date (YYYY-MM-DD) meaning its midnight in timezone."),
]


class PaymentsSummary(BaseModel):
    object: Literal["payments_summary"] = "payments_summary"
    livemode: bool
    timezone: str = Field(examples=["America/New_York"])
    group_by: list[str] = Field(examples=[["day", "currency"]])
    columns: list[str] = Field(
        description="The keys of each row, in the CSV's column order: the dimensions grouped "
        "by, then count, amount, amount_received, amount_refunded, fee, net, "
        "fee_pending_count."
    )
    data: list[dict[str, Cell]]
    interval_start: int = Field(alias="from", description="Unix seconds, inclusive.")
    interval_end: int = Field(alias="to", description="Unix seconds, exclusive.")

    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)


class SummaryParameters(RequestModel):
    """The same parameters as ``GET /v1/reports/payments_summary``."""

    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        populate_by_name=False,
        json_schema_extra={
            "examples": [
                {
                    "from": "2026-01-01",
                    "to": "2027-01-01",
                    "timezone": "Europe/Paris",
                    "group_by": ["day", "status", "currency"],
                }
            ]
        },
    )

    start: Moment | None = Field(default=None, alias="from")
    end: Moment | None = Field(default=None, alias="to")
    timezone: StrictStr = Field(default="UTC", max_length=64)
    group_by: list[Annotated[StrictStr, Field(max_length=20)]] | StrictStr | None = Field(
        default=None, description="Dimensions: day, status, currency, connector."
    )


class ReportRunCreate(RequestModel):
    report_type: Literal["payments_summary"] = Field(description="The report to run.")
    parameters: SummaryParameters = Field(default_factory=SummaryParameters)


class ReportFile(BaseModel):
    object: Literal["file"] = "file"
    type: Literal["csv"] = "csv"
    url: str = Field(examples=["/v1/report_runs/frr_01JD2Y3ZQ8W5Z3K4M6N7P8Q9R0/file"])
    size: int
    filename: str


class ReportRun(BaseModel):
    id: str = Field(examples=["frr_01JD2Y3ZQ8W5Z3K4M6N7P8Q9R0"])
    object: Literal["reporting.report_run"] = "reporting.report_run"
    created: int
    error: str | None
    livemode: bool
    parameters: dict[str, Any]
    report_type: ReportType
    result: ReportFile | None
    status: ReportRunStatus
    succeeded_at: int | None

    @classmethod
    def from_row(cls, row: ReportRunRow, size: int | None = None) -> ReportRun:
        result = None
        if row.status is ReportRunStatus.SUCCEEDED and size is not None:
            result = ReportFile(
                url=f"/v1/report_runs/{row.id}/file",
                size=size,
                filename=f"{row.report_type.value}_{row.id}.csv",
            )
        return cls(
            id=row.id,
            created=unix(row.created_at) or 0,
            error=row.error,
            livemode=row.livemode,
            parameters=row.parameters,
            report_type=row.report_type,
            result=result,
            status=row.status,
            succeeded_at=unix(row.succeeded_at),
        )
