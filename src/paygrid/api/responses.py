"""Response helpers shared by the routers: JSON rendering, list envelopes, pagination and
the documented error responses."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import Depends, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel

from paygrid.domain.pagination import PageRequest
from paygrid.schemas.common import LATEST_UNIX_TIME, ErrorResponse


def json_response(model: BaseModel, status_code: int = 200) -> Response:
    return Response(model.model_dump_json(), status_code=status_code, media_type="application/json")


def list_response(request: Request, data: Sequence[BaseModel], has_more: bool) -> Response:
    items = ",".join(item.model_dump_json() for item in data)
    more = str(has_more).lower()
    body = f'{{"object":"list","url":"{request.url.path}","has_more":{more},"data":[{items}]}}'
    return Response(body, media_type="application/json")


UnixTime = Annotated[int | None, Query(ge=0, le=LATEST_UNIX_TIME)]


async def page_request(
    limit: Annotated[int, Query(ge=1, le=100, description="1 to 100 objects, default 10.")] = 10,
    starting_after: Annotated[
        str | None,
        Query(description="Cursor: an object id of this list; returns older objects."),
    ] = None,
    ending_before: Annotated[
        str | None,
        Query(description="Cursor: an object id of this list; returns newer objects."),
    ] = None,
    created: Annotated[
        UnixTime, Query(description="Unix time: objects created in this second.")
    ] = None,
    created_gt: Annotated[UnixTime, Query(alias="created[gt]", description="Unix time.")] = None,
    created_gte: Annotated[
        UnixTime, Query(alias="created[gte]", description="Unix time, inclusive.")
    ] = None,
    created_lt: Annotated[UnixTime, Query(alias="created[lt]", description="Unix time.")] = None,
    created_lte: Annotated[
        UnixTime, Query(alias="created[lte]", description="Unix time, inclusive.")
    ] = None,
) -> PageRequest:
    # Objects show ``created`` in whole seconds, and the database keeps microseconds: every
    # bound becomes a half-open window of whole seconds, [from, before).
    lower = [created_gte, created, None if created_gt is None else created_gt + 1]
    upper = [created_lt, *(None if t is None else t + 1 for t in (created_lte, created))]
    lowest = max((t for t in lower if t is not None), default=None)
    highest = min((t for t in upper if t is not None), default=None)
    return PageRequest(
        limit,
        starting_after,
        ending_before,
        created_from=None if lowest is None else datetime.fromtimestamp(lowest, UTC),
        created_before=None if highest is None else datetime.fromtimestamp(highest, UTC),
    )


Page = Annotated[PageRequest, Depends(page_request)]


def _error(
    description: str, example_code: str, example_type: str = "invalid_request_error"
) -> dict[str, Any]:
    return {
        "model": ErrorResponse,
        "description": description,
        "content": {
            "application/json": {
                "example": {
                    "error": {
                        "type": example_type,
                        "code": example_code,
                        "message": "...",
                        "param": None,
                        "request_id": "req_3f2a...",
                    }
                }
            }
        },
    }


COMMON_ERRORS: dict[int | str, dict[str, Any]] = {
    400: _error(
        "Invalid request. Codes: `parameter_invalid`, `parameter_missing`, `parameter_unknown`, "
        "`invalid_json`, `amount_invalid`, `amount_too_small`, `amount_too_large`, "
        "`currency_not_supported`, `resource_missing` (a referenced object), "
        "`idempotency_key_invalid`, `no_connector_available`, `card_data_not_allowed`, "
        "`card_number_in_text`.",
        "parameter_invalid",
    ),
    401: _error(
        "Missing, malformed or revoked API key. Codes: `api_key_missing`, `api_key_invalid`, `api_key_revoked`.",
        "api_key_invalid",
        "authentication_error",
    ),
    403: _error(
        "This key may not make this request (e.g. a publishable key). Code: `secret_key_required`.",
        "secret_key_required",
        "permission_error",
    ),
    404: _error(
        "No such object for this merchant and mode. Code: `resource_missing`.", "resource_missing"
    ),
    409: _error(
        "Conflict. Codes: `payment_invalid_state` (the message names the current status), `idempotency_key_in_use`, `reference_already_exists`.",
        "payment_invalid_state",
    ),
    413: _error("Body larger than 1 MB. Code: `body_too_large`.", "body_too_large"),
    415: _error("Body is not JSON. Code: `unsupported_media_type`.", "unsupported_media_type"),
    422: _error(
        "Code: `idempotency_key_reused` (same key, different request) or `refund_exceeds_available`.",
        "idempotency_key_reused",
        "idempotency_error",
    ),
    429: _error(
        "Too many requests for this API key, client IP or (creating payments) customer. Code: "
        "`rate_limit_exceeded`; wait the `Retry-After` header's seconds (also `retry_after`).",
        "rate_limit_exceeded",
        "rate_limit_error",
    ),
}

CARD_ERRORS: dict[int | str, dict[str, Any]] = {
    402: _error(
        "The card was declined or its data is invalid. Codes: `card_declined`, "
        "`insufficient_funds`, `expired_card`, `incorrect_cvc`, `processing_error`, "
        "`authentication_failed`, `incorrect_number`, `invalid_expiry_month`, "
        "`invalid_expiry_year`, `invalid_cvc`. Includes `decline_code` and `payment_id`.",
        "card_declined",
        "card_error",
    ),
    502: _error(
        "The provider could not be reached (`provider_unavailable`) or timed out (`provider_timeout`); retry with the same Idempotency-Key.",
        "provider_unavailable",
        "api_error",
    ),
}
