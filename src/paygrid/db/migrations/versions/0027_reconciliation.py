"""PLACEHOLDER (issue 15): filled by the work that owns it.

Revision ID: 0027_reconciliation
Revises: 0026_reports
Create Date: 2026-12-07
"""

from __future__ import annotations

revision = "0027_reconciliation"
down_revision = "0026_reports"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
