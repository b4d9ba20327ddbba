"""Audit rows kept inline and uncompressed up to 8160 bytes (issue 12 §2, cost).

A payment's ``payment.updated`` entry carries its row twice (before and after), about 2 kB:
just over PostgreSQL's default TOAST target of 2032 bytes, so every one was compressed
(pglz) as it was written. ``toast_tuple_target = 8160`` keeps such rows inline as they
are: 3,000 updates of a payment in one transaction took 500 ms with the compression and
405 ms without, about 30 µs of PostgreSQL per payment. Audit rows are written once and
read rarely; they take about 10 % more room.

Revision ID: 0032_audit_inline
Revises: 0031_fence_drain
Create Date: 2026-12-07
"""

from __future__ import annotations

from alembic import op

revision = "0032_audit_inline"
down_revision = "0031_fence_drain"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE audit_log SET (toast_tuple_target = 8160)")


def downgrade() -> None:
    op.execute("ALTER TABLE audit_log RESET (toast_tuple_target)")
