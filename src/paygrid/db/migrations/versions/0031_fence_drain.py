"""The restore's drain acknowledgment (issue 16 §5): each serving and worker process
registers in ``paygrid_fence.processes`` (host, pid and boot id) from its LISTEN hub's
connection, whose backend says it is alive (gone: the row is marked lost, waited for a
grace period, then swept), and reports, for a raised fence, how many requests and jobs
it still has in flight and when it drained; ``paygrid restore`` waits for every live one
instead of sleeping. In the fence's schema, which backups leave out and a restore leaves
in place.

Revision ID: 0031_fence_drain
Revises: 0030_uncollected_renewals
Create Date: 2026-12-07
"""

from __future__ import annotations

from alembic import op

from paygrid.db.migration_script import execute_script

revision = "0031_fence_drain"
down_revision = "0030_uncollected_renewals"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # IF NOT EXISTS: a restore of an older archive migrates up to head while the schema,
    # never dumped, is still there with its tables (db/fence.py ensure_table made them).
    execute_script(
        """
        CREATE SCHEMA IF NOT EXISTS paygrid_fence;
        CREATE TABLE IF NOT EXISTS paygrid_fence.processes (
            hostname text NOT NULL,
            pid integer NOT NULL,
            boot_id text NOT NULL,
            role text NOT NULL CHECK (role IN ('serve', 'worker')),
            backend_pid integer NOT NULL,
            backend_start timestamptz NOT NULL,
            registered_at timestamptz NOT NULL,
            lost_at timestamptz,
            fence_raised_at timestamptz,
            in_flight integer NOT NULL DEFAULT 0 CHECK (in_flight >= 0),
            reported_at timestamptz,
            drained_at timestamptz,
            PRIMARY KEY (hostname, pid, boot_id),
            CHECK (drained_at IS NULL OR (fence_raised_at IS NOT NULL AND in_flight = 0))
        );
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE IF EXISTS paygrid_fence.processes")
