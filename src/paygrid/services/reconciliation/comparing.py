"""The comparison core of a run: the provider's charges and refunds of a window against
paygrid's, read in bulk and matched by the pure ``domain.reconciliation``. It writes
nothing; ``running`` stores and heals what it finds. ``bench/reconcile.py`` times it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from paygrid.db import reconciliation_reads as reads
from paygrid.db.connector_accounts import ConnectorAccountRow
from paygrid.domain.reconciliation import (
    Finding,
    PaygridCharge,
    ProviderCharge,
    ProviderRefund,
    compare_charges,
    compare_refunds,
    missing_in_paygrid,
)

# Asks the provider about one charge paygrid says succeeded but the provider's list left
# out: True when the provider confirms it has no such charge.
ConfirmMissing = Callable[[PaygridCharge], Awaitable[bool]]


@dataclass(frozen=True, slots=True)
class Found:
    findings: list[Finding]
    compared: int  # objects compared, both sides
    unlisted: list[PaygridCharge]  # succeeded here, not in the provider's list


async def compare_window(
    pool: asyncpg.Pool,
    account: ConnectorAccountRow,
    window: tuple[datetime, datetime],
    charges: Sequence[ProviderCharge],
    refunds: Sequence[ProviderRefund],
) -> Found:
    """Compare the account's window with the provider's objects (listed since the window's
    start). A provider object outside paygrid's read is looked up by reference before it
    is reported missing."""
    start, end = window
    bounds = (int(start.timestamp()), int(end.timestamp()))
    ours = await reads.charges_in_window(pool, account, start, end)
    matched = compare_charges(ours, charges)
    findings = list(matched.findings)
    theirs = [c for c in matched.unmatched_theirs if bounds[0] <= c.created < bounds[1]]
    # An attempt without a stored reference is read by its id (Stripe's metadata names it).
    keys = [c.reference for c in theirs] + [c.attempt_id for c in theirs if c.attempt_id]
    elsewhere = await reads.charges_by_reference(pool, account, keys)
    findings.extend(compare_charges(elsewhere, theirs).findings)
    seen = {c.reference for c in elsewhere} | {c.attempt_id for c in elsewhere}
    findings.extend(
        missing_in_paygrid(c)
        for c in theirs
        if c.reference not in seen and (c.attempt_id is None or c.attempt_id not in seen)
    )
    findings.extend(await _refunds(pool, account, window, ours + elsewhere, refunds))
    compared = matched.compared + len(refunds)
    return Found(findings, compared, matched.unmatched_ours)


async def _refunds(
    pool: asyncpg.Pool,
    account: ConnectorAccountRow,
    window: tuple[datetime, datetime],
    charges: Sequence[PaygridCharge],
    refunds: Sequence[ProviderRefund],
) -> list[Finding]:
    ours = await reads.refunds_in_window(pool, account, *window)
    in_window = {r.reference for r in ours if r.reference is not None}
    unknown = [r for r in refunds if r.reference not in in_window]
    also = await reads.known_refund_references(pool, account, [r.reference for r in unknown])
    payment_of = {c.reference: c.payment_id for c in charges}
    lookups = {r.charge_reference for r in unknown} - payment_of.keys()
    for charge in await reads.charges_by_reference(pool, account, sorted(lookups)):
        payment_of[charge.reference] = charge.payment_id
    # The refunds the provider's refunds name (paygrid's id sent along): a lost answer's.
    named = sorted({r.refund_id for r in unknown if r.refund_id is not None})
    awaiting = await reads.refunds_by_id(pool, account, named)
    bounds = (int(window[0].timestamp()), int(window[1].timestamp()))
    return compare_refunds(ours, refunds, payment_of, bounds, frozenset(also), awaiting)


async def confirmed_missing(
    unlisted: Sequence[PaygridCharge], confirm: ConfirmMissing
) -> list[PaygridCharge]:
    """The unlisted charges the provider confirms it does not have (one lookup each: the
    list may only have missed them at the window's edge)."""
    return [charge for charge in unlisted if await confirm(charge)]
