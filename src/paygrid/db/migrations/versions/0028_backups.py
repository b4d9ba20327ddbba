"""The backup catalog (issue 16 §5): one row per archive file (by name) that ``paygrid backup
create`` wrote or ``paygrid backup verify`` checked, with the result of its last verify (a
damaged copy of a good archive has its own row, not the original's).
``paygrid_backup_age_seconds`` is read from it at scrape time.

A backup's own row is written after its dump is taken, so an archive never holds its own
row: a database restored from an archive knows only the backups taken before it (see
docs/operations.md, "Backups").

Revision ID: 0028_backups
Revises: 0027_reconciliation
Create Date: 2026-12-07
"""

from __future__ import annotations

from paygrid.db.migration_script import execute_script

revision = "0028_backups"
down_revision = "0027_reconciliation"
branch_labels = None
depends_on = None

UPGRADE = """
CREATE TABLE backups (
    file_name     text PRIMARY KEY CHECK (length(file_name) BETWEEN 1 AND 255),
    dump_sha256   text NOT NULL CHECK (dump_sha256 ~ '^[0-9a-f]{64}$'),
    created_at    timestamptz NOT NULL,
    bytes         bigint NOT NULL CHECK (bytes >= 0),
    verify_status text NOT NULL CHECK (verify_status IN ('unverified', 'passed', 'failed')),
    verified_at   timestamptz,
    failure       text,
    recorded_at   timestamptz NOT NULL,
    CHECK ((verify_status = 'unverified') = (verified_at IS NULL))
);
CREATE INDEX backups_created ON backups (created_at);
"""

DOWNGRADE = """
DROP TABLE backups;
"""


def upgrade() -> None:
    execute_script(UPGRADE)


def downgrade() -> None:
    execute_script(DOWNGRADE)
