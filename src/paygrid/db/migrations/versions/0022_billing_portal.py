"""PLACEHOLDER (issue 14): filled by the work that owns it.

Revision ID: 0022_billing_portal
Revises: 0021_hosted_invoices
Create Date: 2026-12-07
"""

from __future__ import annotations

revision = "0022_billing_portal"
down_revision = "0021_hosted_invoices"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
