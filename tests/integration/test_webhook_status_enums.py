"""The webhook and inbox status enums name exactly the values the schema's CHECK constraints
allow: a status added on one side only fails here, not at the first row that carries it."""

from __future__ import annotations

import re
from enum import StrEnum

import asyncpg
import pytest

from paygrid.domain.provider_events import ProviderEventStatus
from paygrid.domain.webhooks import DeliveryStatus, EndpointStatus


async def _allowed(pool: asyncpg.Pool, table: str, column: str) -> set[str]:
    """The literals of the CHECK constraint on ``table.column`` (``column IN (...)``)."""
    definitions = await pool.fetch(
        "SELECT pg_get_constraintdef(c.oid) AS definition FROM pg_constraint c"
        " WHERE c.conrelid = $1::regclass AND c.contype = 'c'",
        table,
    )
    for row in definitions:
        definition: str = row["definition"]
        if re.search(rf"\(\({column}\s*=\s*ANY", definition):
            return set(re.findall(r"'([^']*)'::text", definition))
    raise AssertionError(f"no CHECK constraint on {table}.{column}")


@pytest.mark.parametrize(
    ("table", "column", "enum"),
    [
        ("webhook_endpoints", "status", EndpointStatus),
        ("webhook_deliveries", "status", DeliveryStatus),
        ("provider_webhook_events", "status", ProviderEventStatus),
    ],
)
async def test_status_enum_matches_the_schema(
    pool: asyncpg.Pool, table: str, column: str, enum: type[StrEnum]
) -> None:
    assert await _allowed(pool, table, column) == {member.value for member in enum}
