"""The write fence of ``paygrid restore`` (issue 16 §5): one row in a schema of its own,
``paygrid_fence``, which backups leave out and a restore leaves in place, so the fence
holds while the restore replaces every table of ``public``.

Revision ID: 0029_restore
Revises: 0028_backups
Create Date: 2026-12-07
"""

from __future__ import annotations

from alembic import op

revision = "0029_restore"
down_revision = "0028_backups"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # IF NOT EXISTS: a restore of an older archive migrates up to head while the schema,
    # never dumped, is still there holding the fence.
    op.execute("CREATE SCHEMA IF NOT EXISTS paygrid_fence")
    op.execute(
        """
        CREATE TABLE IF NOT EXISTS paygrid_fence.fence (
            singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
            reason text NOT NULL,
            retry_after integer NOT NULL CHECK (retry_after > 0),
            raised_at timestamptz NOT NULL
        )
        """
    )


def downgrade() -> None:
    op.execute("DROP SCHEMA IF EXISTS paygrid_fence CASCADE")
