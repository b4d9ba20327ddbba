"""The typed rows services work on match their tables: every field is a column (so
``from_record`` can build it from ``SELECT *``), every column of the table is a field, and
status columns read back as their enums."""

from __future__ import annotations

from dataclasses import fields

import asyncpg
import pytest

from paygrid.db.billing_portal_sessions import PortalSessionRow
from paygrid.db.checkout_sessions import CheckoutSessionRow
from paygrid.db.connector_accounts import ConnectorAccountRow
from paygrid.db.customers import CustomerRow
from paygrid.db.dashboard import DashboardUserRow
from paygrid.db.mandates import MandateRow
from paygrid.db.payment_methods import PaymentMethodRow
from paygrid.db.prices import PriceRow
from paygrid.db.products import ProductRow
from paygrid.db.refunds import RefundRow
from paygrid.db.setup_intents import SetupIntentRow
from paygrid.db.test_clocks import TestClockRow
from paygrid.domain.checkout import CheckoutSessionStatus
from paygrid.domain.connector_accounts import ConnectorAccountStatus
from paygrid.domain.refunds import RefundStatus
from paygrid.domain.setup_intents import SetupIntentStatus

ROWS: list[tuple[str, type]] = [
    ("refunds", RefundRow),
    ("customers", CustomerRow),
    ("checkout_sessions", CheckoutSessionRow),
    ("payment_methods", PaymentMethodRow),
    ("connector_accounts", ConnectorAccountRow),
    ("dashboard_users", DashboardUserRow),
    ("mandates", MandateRow),
    ("setup_intents", SetupIntentRow),
    ("test_clocks", TestClockRow),
    ("products", ProductRow),
    ("prices", PriceRow),
    ("billing_portal_sessions", PortalSessionRow),
]


@pytest.mark.parametrize(("table", "row_type"), ROWS)
async def test_a_typed_row_has_exactly_its_tables_columns(
    pool: asyncpg.Pool, table: str, row_type: type
) -> None:
    columns = {
        r["column_name"]
        for r in await pool.fetch(
            "SELECT column_name FROM information_schema.columns"
            " WHERE table_schema = current_schema() AND table_name = $1",
            table,
        )
    }
    assert columns, f"no table {table}"
    assert {f.name for f in fields(row_type)} == columns


@pytest.mark.parametrize(
    ("table", "enum"),
    [
        ("refunds", RefundStatus),
        ("checkout_sessions", CheckoutSessionStatus),
        ("connector_accounts", ConnectorAccountStatus),
        ("setup_intents", SetupIntentStatus),
    ],
)
async def test_a_status_enum_names_exactly_what_the_table_allows(
    pool: asyncpg.Pool, table: str, enum: type[RefundStatus]
) -> None:
    check = await pool.fetchval(
        "SELECT pg_get_constraintdef(c.oid) FROM pg_constraint c"
        " JOIN pg_class t ON t.oid = c.conrelid"
        " WHERE t.relname = $1 AND c.contype = 'c'"
        " AND pg_get_constraintdef(c.oid) LIKE '%status%'",
        table,
    )
    assert check is not None
    allowed = {value for value in check.split("'")[1::2]}
    assert allowed == {member.value for member in enum}
