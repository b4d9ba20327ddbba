"""PLACEHOLDER (issue 14): filled by the work that owns it.

Revision ID: 0020_dunning
Revises: 0019_billing_settings
Create Date: 2026-12-07
"""

from __future__ import annotations

revision = "0020_dunning"
down_revision = "0019_billing_settings"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
