"""The payments summary: per day (in the report's time zone), status, currency and
connector, the count of payments created in the window and their amounts, refunds, fees and
nets in minor units. Amounts in different currencies are never added: every row is one
currency's.

It reads from ``deps.report_reads``, the read replica when one is configured. Only this
read-only query goes there; nothing that writes, nor a read that must see a write just made
(a report run's own row, for one), ever does. The API's summary is ``@read_only``: it gets
the replica only when the replica has caught up with the primary (``api/read_only.py``).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence

from paygrid.db import reports as reports_db
from paygrid.db.reports import SummaryRow as SummaryRow
from paygrid.dependencies import Deps
from paygrid.domain.reports import SummaryRequest
from paygrid.schemas.reports import Cell, PaymentsSummary
from paygrid.services.context import Tenant


async def summary_rows(
    deps: Deps, tenant: Tenant, request: SummaryRequest, *, replica: bool = True
) -> list[SummaryRow]:
    """The summary's rows, ordered by their groups, from the reports' pool; ``replica=False``
    for a page that must show what was just written (the dashboard's overview)."""
    return await reports_db.payments_summary(
        deps.report_reads if replica else deps.pool,
        tenant.merchant_id,
        tenant.livemode,
        request.start,
        request.end,
        request.timezone,
        request.group_by,
    )


def cells(request: SummaryRequest, row: SummaryRow) -> dict[str, Cell]:
    """A row's values by column, in ``request.columns`` order (dates as ``YYYY-MM-DD``)."""
    values: dict[str, Cell] = {
        "day": None if row.day is None else row.day.isoformat(),
        "status": None if row.status is None else row.status.value,
        "currency": row.currency,
        "connector": row.connector,
        "count": row.count,
        "amount": row.amount,
        "amount_received": row.amount_received,
        "amount_refunded": row.amount_refunded,
        "fee": row.fee,
        "net": row.net,
        "fee_pending_count": row.fee_pending_count,
    }
    return {column: values[column] for column in request.columns}


def to_json(request: SummaryRequest, tenant: Tenant, rows: Sequence[SummaryRow]) -> PaymentsSummary:
    return PaymentsSummary(
        livemode=tenant.livemode,
        timezone=request.timezone,
        group_by=[d.value for d in request.group_by],
        columns=list(request.columns),
        data=[cells(request, row) for row in rows],
        interval_start=int(request.start.timestamp()),
        interval_end=int(request.end.timestamp()),
    )


def to_csv(request: SummaryRequest, rows: Sequence[SummaryRow]) -> bytes:
    """The same rows as CSV (RFC 4180, UTF-8): a header of ``request.columns``, then one
    line per row in the same order; an absent value (no connector) is an empty field."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(request.columns)
    for row in rows:
        writer.writerow("" if v is None else v for v in cells(request, row).values())
    return out.getvalue().encode()


async def payments_summary(deps: Deps, tenant: Tenant, request: SummaryRequest) -> PaymentsSummary:
    """The summary as the API's JSON object."""
    return to_json(request, tenant, await summary_rows(deps, tenant, request))


async def payments_summary_csv(deps: Deps, tenant: Tenant, request: SummaryRequest) -> bytes:
    """The summary as CSV: byte for byte what a report run of the same parameters stores."""
    return to_csv(request, await summary_rows(deps, tenant, request))
