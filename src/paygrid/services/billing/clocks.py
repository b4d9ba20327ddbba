"""Which time a customer's objects run on: its test clock's frozen time when it was created
on one, else the process's clock (``deps.clock``).

Everything that belongs to a customer (subscriptions, invoices, their payments and events)
asks here instead of reading ``deps.clock`` directly, in API requests and in jobs alike, so a
test clock moves exactly its own customers and nothing else.
"""

from __future__ import annotations

from dataclasses import replace

from paygrid.clock import Clock, FrozenClock
from paygrid.db import test_clocks as test_clocks_db
from paygrid.db.executor import Executor
from paygrid.dependencies import Deps


async def clock_for_customer(
    deps: Deps, customer_id: str | None, conn: Executor | None = None
) -> Clock:
    """The clock of ``customer_id``: a ``FrozenClock`` at its test clock's ``frozen_time``
    (read now, in ``conn``'s transaction when given), or ``deps.clock`` for a customer
    without a test clock, an unknown customer, or none."""
    if customer_id is None:
        return deps.clock
    clock = await test_clocks_db.clock_of_customer(conn or deps.pool, customer_id)
    if clock is None:
        return deps.clock
    return FrozenClock(clock.frozen_time, deps.clock)


async def clock_for_test_clock(deps: Deps, clock_id: str, conn: Executor | None = None) -> Clock:
    """A ``FrozenClock`` at test clock ``clock_id``'s frozen time (deleted clocks too);
    ``deps.clock`` when there is no such clock."""
    clock = await test_clocks_db.get_by_id(conn or deps.pool, clock_id)
    return deps.clock if clock is None else FrozenClock(clock.frozen_time, deps.clock)


async def deps_for_customer(
    deps: Deps, customer_id: str | None, conn: Executor | None = None
) -> Deps:
    """``deps`` on the customer's clock, to hand to a use case (the payment service, ...)
    that reads ``deps.clock`` for what it does on the customer's behalf."""
    clock = await clock_for_customer(deps, customer_id, conn)
    return deps if clock is deps.clock else replace(deps, clock=clock)
