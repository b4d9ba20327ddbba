"""PLACEHOLDER (issue 14): filled by the work that owns it.

Revision ID: 0023_emails
Revises: 0022_billing_portal
Create Date: 2026-12-07
"""

from __future__ import annotations

revision = "0023_emails"
down_revision = "0022_billing_portal"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
