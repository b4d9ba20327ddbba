"""Reading what dashboard forms and filters send: text fields, dates, amounts in major
units, the confirmation box and list cursors."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from fastapi import Request

from paygrid.domain.errors import InvalidRequest
from paygrid.domain.pagination import PageRequest
from paygrid.money import CURRENCIES, Currency, parse_minor

PAGE_SIZE = 25
_ID = re.compile(r"^[a-z]{2,6}_[A-Za-z0-9]{1,64}$")
_AMOUNT = re.compile(r"^[0-9]+(\.[0-9]+)?$")


async def fields(request: Request) -> dict[str, str]:
    """The posted form's text fields (files are ignored), stripped."""
    form = await request.form()
    return {k: v.strip() for k, v in form.items() if isinstance(v, str)}


def text(value: str | None, limit: int = 255) -> str | None:
    """A filter value: ``None`` when blank; too-long values are refused."""
    if value is None or not value.strip():
        return None
    if len(value) > limit:
        raise InvalidRequest(f"A filter value may be at most {limit} characters.")
    return value.strip()


def require_confirmation(form: dict[str, str], what: str) -> None:
    """Actions that move money ask for a ticked confirmation box (no JavaScript needed)."""
    if form.get("confirm") != "yes":
        raise InvalidRequest(
            f"Tick the confirmation box to {what}. Nothing was changed.", code="not_confirmed"
        )


def day(value: str | None, *, end: bool = False) -> datetime | None:
    """A ``YYYY-MM-DD`` date input as the start (or end) of that UTC day."""
    if not value:
        return None
    try:
        parsed = date.fromisoformat(value)
    except ValueError:
        raise InvalidRequest(f"'{value}' is not a date (YYYY-MM-DD).") from None
    start = datetime.combine(parsed, time.min, UTC)
    return start + timedelta(days=1, microseconds=-1) if end else start


def amount(value: str | None, currency: Currency, what: str = "amount") -> int | None:
    """A major-unit amount ('12.50') in minor units; ``None`` when left empty."""
    if not value:
        return None
    minor = parse_minor(value, currency)
    if minor <= 0:
        raise InvalidRequest(f"The {what} must be greater than zero.", param=what)
    return minor


def amounts_matching(query: str) -> list[tuple[str, int]]:
    """A search term read as a major-unit amount in every currency it is valid in."""
    if not _AMOUNT.fullmatch(query):
        return []
    matches = []
    for code, currency in CURRENCIES.items():
        try:
            matches.append((code, parse_minor(query, currency)))
        except InvalidRequest:
            continue
    return matches


def object_id(value: str | None) -> str | None:
    """A cursor must look like one of our ids (it is passed to a query as a bound value;
    this only keeps garbage out of links)."""
    if value and _ID.fullmatch(value):
        return value
    return None


@dataclass(frozen=True, slots=True)
class Cursor:
    after: str | None
    before: str | None

    def page(self, size: int = PAGE_SIZE) -> PageRequest:
        return PageRequest(limit=size, starting_after=self.after, ending_before=self.before)


def cursor(after: str | None, before: str | None) -> Cursor:
    return Cursor(object_id(after), None if after else object_id(before))


@dataclass(frozen=True, slots=True)
class Pager:
    """Links to the next and previous pages of a newest-first list."""

    next_after: str | None
    prev_before: str | None


def pager(ids: list[str], has_more: bool, current: Cursor) -> Pager:
    if not ids:
        return Pager(None, current.after)
    going_back = current.before is not None
    more_older = has_more if not going_back else True
    more_newer = (has_more if going_back else False) or current.after is not None
    return Pager(ids[-1] if more_older else None, ids[0] if more_newer else None)
