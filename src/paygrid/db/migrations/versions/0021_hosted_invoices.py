"""PLACEHOLDER (issue 14): filled by the work that owns it.

Revision ID: 0021_hosted_invoices
Revises: 0020_dunning
Create Date: 2026-12-07
"""

from __future__ import annotations

revision = "0021_hosted_invoices"
down_revision = "0020_dunning"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
