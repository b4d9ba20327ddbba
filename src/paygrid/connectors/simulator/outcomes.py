"""How a scripted outcome (test helpers, issue 14 §2) ends a simulator charge: its status and
the key of the connector's ``DECLINES`` it stores. Pure."""

from __future__ import annotations

from typing import Final

from paygrid.connectors.simulator.store import Scripted
from paygrid.domain.scripted_outcomes import ScriptedOutcome

# A scripted outcome's decline: the key of ``DECLINES`` a charge stores.
_SCRIPTED_DECLINES: Final[dict[ScriptedOutcome, str]] = {
    ScriptedOutcome.CARD_DECLINED: "card_declined",
    ScriptedOutcome.INSUFFICIENT_FUNDS: "insufficient_funds",
    ScriptedOutcome.EXPIRED_CARD: "expired_card",
    ScriptedOutcome.PROCESSING_ERROR: "processing_error",
    **{
        outcome: outcome.value
        for outcome in (
            ScriptedOutcome.GENERIC_DECLINE,
            ScriptedOutcome.STOLEN_CARD,
            ScriptedOutcome.LOST_CARD,
            ScriptedOutcome.DO_NOT_HONOR,
            ScriptedOutcome.TRY_AGAIN_LATER,
            ScriptedOutcome.ISSUER_NOT_AVAILABLE,
            ScriptedOutcome.FRAUDULENT,
            ScriptedOutcome.PICKUP_CARD,
            ScriptedOutcome.INVALID_ACCOUNT,
            ScriptedOutcome.CARD_NOT_SUPPORTED,
        )
    },
}


def scripted_status(
    outcome: ScriptedOutcome, capture: bool, *, off_session: bool
) -> tuple[str, str | None]:
    """The status and decline code of a charge that a script tells how to end."""
    match outcome:
        case ScriptedOutcome.SUCCEEDED:
            return ("captured" if capture else "authorized"), None
        case ScriptedOutcome.AUTHENTICATION_REQUIRED:
            return "requires_action", "authentication_required" if off_session else None
        case _:
            return "declined", _SCRIPTED_DECLINES[outcome]


# (outcome, status, decline code) of every scripted outcome, per (capture, off_session).
SCRIPTED: Final[dict[tuple[bool, bool], Scripted]] = {
    (capture, off_session): [
        (outcome.value, *scripted_status(outcome, capture, off_session=off_session))
        for outcome in ScriptedOutcome
    ]
    for capture in (False, True)
    for off_session in (False, True)
}
