"""Webhook endpoint and delivery objects."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from paygrid.domain.events import EventType
from paygrid.schemas.common import (
    HTTP_URL_SCHEMA,
    LATEST_UNIX_TIME,
    FreeText,
    Metadata,
    RequestModel,
    unix,
)

if TYPE_CHECKING:
    from paygrid.db.webhooks import DeliveryAttemptRow, DeliveryRow, WebhookEndpointRow

SUBSCRIBABLE = frozenset({*(t.value for t in EventType), "*"})


def _check_event_types(value: list[str]) -> list[str]:
    unknown = sorted(set(value) - SUBSCRIBABLE)
    if unknown:
        raise ValueError(f"unknown event types: {', '.join(unknown)}")
    if not value:
        raise ValueError("list at least one event type, or ['*'] for all")
    return sorted(set(value))


EnabledEvents = Annotated[
    list[str],
    AfterValidator(_check_event_types),
    Field(
        max_length=100,
        description='Event types to send, or `["*"]` for every type.',
        examples=[["payment.succeeded", "refund.succeeded"]],
        json_schema_extra={"minItems": 1, "items": {"enum": sorted(SUBSCRIBABLE)}},
    ),
]


class WebhookEndpointCreate(RequestModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"url": "https://shop.example.com/hooks/paygrid", "enabled_events": ["*"]}]
        }
    )

    url: str = Field(
        max_length=2048,
        description="A public address (loopback and private ones only for hosts in "
        "PAYGRID_WEBHOOK_ALLOWED_HOSTS); https in live mode.",
        json_schema_extra=HTTP_URL_SCHEMA,
    )
    enabled_events: EnabledEvents
    description: FreeText | None = Field(default=None, max_length=500)
    metadata: Metadata = Field(default_factory=dict)


class WebhookEndpointUpdate(RequestModel):
    url: str | None = Field(default=None, max_length=2048, json_schema_extra=HTTP_URL_SCHEMA)
    enabled_events: EnabledEvents | None = None
    description: FreeText | None = Field(default=None, max_length=500)
    metadata: Metadata | None = None
    status: Literal["enabled", "disabled"] | None = None


class WebhookEndpoint(BaseModel):
    id: str = Field(examples=["we_01JD2Y3ZQ8W5Z3K4M6N7P8Q9R0"])
    object: Literal["webhook_endpoint"] = "webhook_endpoint"
    url: str
    description: str | None
    enabled_events: list[str]
    status: Literal["enabled", "disabled"]
    disabled_reason: str | None
    paused: bool = Field(description="Deliveries wait while an endpoint is paused.")
    metadata: dict[str, str]
    livemode: bool
    created: int
    secret: str | None = Field(
        default=None,
        description="The signing secret (`whsec_...`), returned only when the endpoint is "
        "created or its secret rotated.",
    )

    @classmethod
    def from_row(cls, row: WebhookEndpointRow, secret: str | None = None) -> WebhookEndpoint:
        return cls(
            id=row.id,
            url=row.url,
            description=row.description,
            enabled_events=list(row.enabled_events),
            status=row.status.value,
            disabled_reason=row.disabled_reason,
            paused=row.paused,
            metadata=row.metadata,
            livemode=row.livemode,
            created=unix(row.created_at) or 0,
            secret=secret,
        )


class DeliveryAttempt(BaseModel):
    id: str
    attempted: int
    status_code: int | None
    latency_ms: int
    response_body: str | None = Field(description="The first 1 KB of the response body.")
    error: str | None

    @classmethod
    def from_row(cls, row: DeliveryAttemptRow) -> DeliveryAttempt:
        return cls(
            id=row.id,
            attempted=unix(row.attempted_at) or 0,
            status_code=row.status_code,
            latency_ms=row.latency_ms,
            response_body=row.response_body,
            error=row.error,
        )


class WebhookDelivery(BaseModel):
    id: str
    object: Literal["webhook_delivery"] = "webhook_delivery"
    endpoint: str
    event: str
    status: Literal["pending", "succeeded", "failed"]
    attempt_count: int
    next_attempt: int | None
    attempts: list[DeliveryAttempt]
    livemode: bool
    created: int

    @classmethod
    def from_row(cls, row: DeliveryRow, attempts: Sequence[DeliveryAttemptRow]) -> WebhookDelivery:
        return cls(
            id=row.id,
            endpoint=row.endpoint_id,
            event=row.event_id,
            status=row.status.value,
            attempt_count=row.attempt_count,
            next_attempt=unix(row.next_attempt_at),
            attempts=[DeliveryAttempt.from_row(a) for a in attempts],
            livemode=row.livemode,
            created=unix(row.created_at) or 0,
        )


class CreatedRange(RequestModel):
    gte: int | None = Field(
        default=None, ge=0, le=LATEST_UNIX_TIME, description="Unix time, inclusive."
    )
    lte: int | None = Field(
        default=None, ge=0, le=LATEST_UNIX_TIME, description="Unix time, inclusive."
    )


class ReplayRequest(RequestModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"created": {"gte": 1763800000}, "status": "failed"}]}
    )

    created: CreatedRange | None = None
    type: str | None = Field(default=None, description="Only events of this type.")
    status: Literal["failed"] | None = Field(
        default=None, description="`failed`: only events whose last delivery here failed."
    )


class RedeliverRequest(RequestModel):
    endpoint: str | None = Field(
        default=None, description="Only this endpoint; default: every subscribed endpoint."
    )


class DeliveriesCreated(BaseModel):
    object: Literal["webhook_redelivery"] = "webhook_redelivery"
    deliveries: int = Field(description="How many deliveries were queued.")


class TestDelivery(BaseModel):
    object: Literal["webhook_test"] = "webhook_test"
    event: str
    delivery: str
