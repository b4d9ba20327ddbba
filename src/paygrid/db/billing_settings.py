"""A merchant's billing settings per mode: one ``billing_settings`` row, made on the first
update, whose sections hold only the fields the merchant set (``domain.billing_settings``
fills in the defaults)."""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any, Final

import asyncpg

from paygrid.db.executor import Executor

SECTION_COLUMNS: Final = ("dunning", "invoices", "portal", "emails")

# A merchant's finalize delay for its subscriptions' renewal drafts, as an interval, in SQL
# over an ``invoices`` row aliased ``i``; ``{}`` is the default delay (a parameter).
FINALIZE_DELAY_OF_INVOICE: Final = (
    "coalesce((SELECT make_interval(secs => (bs.invoices->>'finalize_after_seconds')::int)"
    " FROM billing_settings bs WHERE bs.merchant_id = i.merchant_id"
    " AND bs.livemode = i.livemode), {})"
)


@dataclass(frozen=True, slots=True)
class BillingSettingsRow:
    """One ``billing_settings`` row: each section maps the fields set to their JSON values."""

    id: str
    merchant_id: str
    livemode: bool
    dunning: dict[str, Any]
    invoices: dict[str, Any]
    portal: dict[str, Any]
    emails: dict[str, Any]
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_record(cls, record: asyncpg.Record) -> BillingSettingsRow:
        return cls(**{f.name: record[f.name] for f in fields(cls)})

    def sections(self) -> dict[str, dict[str, Any]]:
        return {
            "dunning": self.dunning,
            "invoices": self.invoices,
            "portal": self.portal,
            "emails": self.emails,
        }


async def get_settings(
    conn: Executor, merchant_id: str, livemode: bool, *, lock: bool = False
) -> BillingSettingsRow | None:
    record = await conn.fetchrow(
        "SELECT * FROM billing_settings WHERE merchant_id = $1 AND livemode = $2"
        + (" FOR UPDATE" if lock else ""),
        merchant_id,
        livemode,
    )
    return None if record is None else BillingSettingsRow.from_record(record)


async def merge_settings(
    conn: Executor,
    *,
    settings_id: str,
    merchant_id: str,
    livemode: bool,
    changes: dict[str, dict[str, Any]],
    now: datetime,
) -> BillingSettingsRow:
    """Set the fields of ``changes`` (per section), leaving the others as they are; makes
    the row on the first update. Concurrent updates queue on the row and both apply."""
    values = [changes.get(name, {}) for name in SECTION_COLUMNS]
    record = await conn.fetchrow(
        "INSERT INTO billing_settings (id, merchant_id, livemode, dunning, invoices, portal,"
        " emails, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)"
        " ON CONFLICT (merchant_id, livemode) DO UPDATE SET"
        " dunning = billing_settings.dunning || EXCLUDED.dunning,"
        " invoices = billing_settings.invoices || EXCLUDED.invoices,"
        " portal = billing_settings.portal || EXCLUDED.portal,"
        " emails = billing_settings.emails || EXCLUDED.emails,"
        " updated_at = EXCLUDED.updated_at"
        " RETURNING *",
        settings_id,
        merchant_id,
        livemode,
        *values,
        now,
    )
    assert record is not None  # inserted or updated
    return BillingSettingsRow.from_record(record)


async def finalize_delays(
    conn: Executor, tenants: set[tuple[str, bool]]
) -> dict[tuple[str, bool], int | None]:
    """``invoices.finalize_after_seconds`` of each (merchant, mode) that set one (null: the
    default)."""
    if not tenants:
        return {}
    records = await conn.fetch(
        "SELECT bs.merchant_id, bs.livemode,"
        " (bs.invoices->>'finalize_after_seconds')::int AS seconds"
        " FROM billing_settings bs"
        " JOIN unnest($1::text[], $2::boolean[]) AS t(merchant_id, livemode)"
        " ON t.merchant_id = bs.merchant_id AND t.livemode = bs.livemode",
        [m for m, _ in tenants],
        [live for _, live in tenants],
    )
    return {(str(r["merchant_id"]), bool(r["livemode"])): r["seconds"] for r in records}


# The tenant's invoice number prefix, in SQL where ``$1`` is the merchant, ``$2`` the mode
# and ``$3`` the default prefix.
NUMBER_PREFIX_OF_TENANT: Final = (
    "coalesce((SELECT bs.invoices->>'number_prefix' FROM billing_settings bs"
    " WHERE bs.merchant_id = $1 AND bs.livemode = $2), $3)"
)
# The footer of the settings of an ``invoices`` row aliased ``i``.
FOOTER_OF_INVOICE: Final = (
    "(SELECT bs.invoices->>'footer' FROM billing_settings bs"
    " WHERE bs.merchant_id = i.merchant_id AND bs.livemode = i.livemode)"
)
