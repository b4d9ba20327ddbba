"""What a setup intent's provider said, recorded: each status write guarded by the
transition table (``domain/setup_intents.py``) with its event in the same transaction; a
success saves the method to the customer with its mandate, once."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from paygrid.connectors.base import AttemptResult
from paygrid.db import setup_intents as setup_db
from paygrid.db.executor import Connection
from paygrid.db.setup_intents import SetupIntentRow
from paygrid.dependencies import Deps
from paygrid.domain import setup_intents as domain
from paygrid.domain.errors import CardError, PaygridError
from paygrid.domain.events import EventType
from paygrid.domain.payments import AttemptOutcome
from paygrid.domain.setup_intents import SetupAction, SetupIntentStatus
from paygrid.schemas.setup_intents import SetupIntent
from paygrid.services import saved_methods
from paygrid.services.context import Tenant
from paygrid.services.snapshots import emit_object


class SetupIntentUnexpectedState(PaygridError):
    """The setup intent is not in a state that allows this operation."""

    status_code = 409
    error_type = "invalid_request_error"
    default_code = "setup_intent_unexpected_state"


async def apply(
    deps: Deps, row: SetupIntentRow, result: AttemptResult, *, raise_decline: bool
) -> SetupIntent:
    """Record what the provider said; only the first to record an outcome saves the
    method and emits its event (the transitions are guarded)."""
    changes: dict[str, Any] = {"provider_reference": result.provider_reference}
    match result.outcome:
        case AttemptOutcome.AUTHORIZED | AttemptOutcome.CAPTURED:
            return await _succeed(deps, row, changes)
        case AttemptOutcome.REQUIRES_ACTION:
            if row.status is SetupIntentStatus.REQUIRES_ACTION:
                return SetupIntent.from_row(row)
            url = result.redirect_url
            changes["next_action"] = {
                "type": "redirect_to_url",
                "redirect_to_url": {"url": url, "return_url": row.return_url},
            }
            moved = await move(deps, row, SetupAction.REQUIRE_ACTION, changes)
            return SetupIntent.from_row(moved)
        case AttemptOutcome.UNKNOWN:
            return SetupIntent.from_row(row)
        case AttemptOutcome.DECLINED:
            decline = result.decline
            code = decline.code if decline else "card_declined"
            message = decline.message if decline else "The card could not be set up."
            changes.update(
                payment_method_id=None,
                next_action=None,
                last_setup_error={"type": "card_error", "code": code, "message": message},
            )
            failed = await move(deps, row, SetupAction.FAIL, changes)
            if raise_decline:
                raise CardError(message, code=code, setup_intent=failed.id)
            return SetupIntent.from_row(failed)


async def _succeed(deps: Deps, row: SetupIntentRow, changes: dict[str, Any]) -> SetupIntent:
    tenant = Tenant(row.merchant_id, row.livemode)
    changes["next_action"] = None
    done = await move(deps, row, SetupAction.SUCCEED, changes, announce=False)
    if done.customer_id is not None and done.payment_method_id is not None:
        mandate = await saved_methods.save_for_future(
            deps,
            tenant,
            method_id=done.payment_method_id,
            customer_id=done.customer_id,
            source_id=done.id,
            mandate_data=done.mandate_data,
        )
        if mandate is not None:
            done = await setup_db.set_mandate(deps.pool, done.id, mandate.id)
    async with deps.pool.acquire() as conn, conn.transaction():
        await emit(conn, done, EventType.SETUP_INTENT_SUCCEEDED, deps.clock.now())
    return SetupIntent.from_row(done)


_EVENTS = {
    SetupIntentStatus.REQUIRES_ACTION: EventType.SETUP_INTENT_REQUIRES_ACTION,
    SetupIntentStatus.REQUIRES_PAYMENT_METHOD: EventType.SETUP_INTENT_SETUP_FAILED,
    SetupIntentStatus.CANCELED: EventType.SETUP_INTENT_CANCELED,
}


async def move(
    deps: Deps,
    row: SetupIntentRow,
    action: SetupAction,
    changes: dict[str, Any],
    *,
    announce: bool = True,
) -> SetupIntentRow:
    """The guarded transition, with its event (a failure's only from a confirm)."""
    sources, target = domain.sources_of(action), domain.target_of(action)
    async with deps.pool.acquire() as conn, conn.transaction():
        moved = await setup_db.transition(conn, row.id, sources, target, deps.clock.now(), changes)
        if moved is None:
            current = await setup_db.get(conn, row.merchant_id, row.livemode, row.id)
            status = current.status.value if current else row.status.value
            raise SetupIntentUnexpectedState(
                f"The setup intent is {status}; it cannot {action.value.replace('_', ' ')}."
            )
        event = _EVENTS.get(target)
        if announce and event is not None and action is not SetupAction.RELEASE:
            await emit(conn, moved, event, moved.updated_at)
    return moved


async def emit(conn: Connection, row: SetupIntentRow, event: EventType, at: datetime) -> None:
    """The event, timed on the clock the change was made on (a test clock's, if any)."""
    snapshot = SetupIntent.from_row(row).model_dump(mode="json")
    await emit_object(conn, row, event, snapshot, created_at=at)
