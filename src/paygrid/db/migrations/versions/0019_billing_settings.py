"""PLACEHOLDER (issue 14): filled by the work that owns it.

Revision ID: 0019_billing_settings
Revises: 0018_subscriptions
Create Date: 2026-12-07
"""

from __future__ import annotations

revision = "0019_billing_settings"
down_revision = "0018_subscriptions"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
