"""PLACEHOLDER (issue 14): filled by the work that owns it.

Revision ID: 0024_payment_links
Revises: 0023_emails
Create Date: 2026-12-07
"""

from __future__ import annotations

revision = "0024_payment_links"
down_revision = "0023_emails"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
