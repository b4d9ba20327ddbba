"""Renewal invoices a crashed worker left uncollected are due again (issue 16 §3).

A renewal batch commits the new periods and their finalized invoices, then charges them.
A worker killed between the two leaves invoices ``open`` and never attempted, and nothing
made them due again: the test clock's walk ended ``ready`` with them unpaid, and the
system clock's schedule never picked their subscriptions. The schedule now treats such an
invoice as due at its finalization (``db.subscriptions.COLLECT_DUE``); this partial index
keeps finding them cheap (it holds only open invoices no attempt has touched).

Revision ID: 0030_uncollected_renewals
Revises: 0029_restore
Create Date: 2026-12-07
"""

from __future__ import annotations

from paygrid.db.migration_script import execute_script

revision = "0030_uncollected_renewals"
down_revision = "0029_restore"
branch_labels = None
depends_on = None

UPGRADE = """
CREATE INDEX invoices_uncollected ON invoices (finalized_at, subscription_id)
    WHERE status = 'open' AND attempt_count = 0 AND payment_id IS NULL
      AND subscription_id IS NOT NULL AND auto_advance
      AND collection_method = 'charge_automatically';
"""

DOWNGRADE = """
DROP INDEX invoices_uncollected;
"""


def upgrade() -> None:
    execute_script(UPGRADE)


def downgrade() -> None:
    execute_script(DOWNGRADE)
