"""Payment links: whether a link may be paid now, and the life of one checkout session
opened from a link (``open`` -> ``reserved`` -> ``completed``, or ``released`` when its
payment fails or its reservation goes stale). Pure."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Final


class AfterCompletion(StrEnum):
    HOSTED_CONFIRMATION = "hosted_confirmation"
    REDIRECT = "redirect"


class Availability(StrEnum):
    """Whether a customer may pay a link now; anything but ``available`` is a 410 page."""

    AVAILABLE = "available"
    INACTIVE = "inactive"
    EXPIRED = "expired"
    EXHAUSTED = "exhausted"


class LinkSessionStatus(StrEnum):
    OPEN = "open"  # the page is shown; no slot is held
    RESERVED = "reserved"  # a completion slot is held while the payment is made
    COMPLETED = "completed"  # paid: the slot is used for good
    RELEASED = "released"  # the payment failed: the slot went back


class LinkSessionAction(StrEnum):
    RESERVE = "reserve"
    COMPLETE = "complete"
    RELEASE = "release"


# The one transition table; every status write in db/payment_links.py is guarded by it.
TRANSITIONS: Final[
    dict[LinkSessionAction, tuple[frozenset[LinkSessionStatus], LinkSessionStatus]]
] = {
    LinkSessionAction.RESERVE: (
        frozenset({LinkSessionStatus.OPEN, LinkSessionStatus.RELEASED}),
        LinkSessionStatus.RESERVED,
    ),
    LinkSessionAction.COMPLETE: (
        frozenset({LinkSessionStatus.RESERVED}),
        LinkSessionStatus.COMPLETED,
    ),
    LinkSessionAction.RELEASE: (
        frozenset({LinkSessionStatus.RESERVED}),
        LinkSessionStatus.RELEASED,
    ),
}

# What the customer reads on the 410 page, by reason.
UNAVAILABLE_MESSAGES: Final[dict[Availability, str]] = {
    Availability.INACTIVE: "This payment link has been deactivated by the seller.",
    Availability.EXPIRED: "This payment link has expired.",
    Availability.EXHAUSTED: "This payment link has reached its limit and is no longer available.",
}


def sources(action: LinkSessionAction) -> list[str]:
    """The statuses ``action`` may leave, as SQL takes them."""
    return sorted(str(s) for s in TRANSITIONS[action][0])


def target(action: LinkSessionAction) -> LinkSessionStatus:
    return TRANSITIONS[action][1]


def availability(
    *,
    active: bool,
    expires_at: datetime | None,
    completion_limit: int | None,
    reserved_count: int,
    now: datetime,
) -> Availability:
    """Inactive first (the seller's choice), then expired, then exhausted (every slot is
    completed or being paid)."""
    if not active:
        return Availability.INACTIVE
    if expires_at is not None and expires_at <= now:
        return Availability.EXPIRED
    if completion_limit is not None and reserved_count >= completion_limit:
        return Availability.EXHAUSTED
    return Availability.AVAILABLE
