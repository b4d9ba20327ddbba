"""Reports (issue 15 §3): asynchronous ``report_runs`` with their CSV in
``report_run_files``, and the indexes the payments summary reads by.

- A run's status is ``queued``, ``running``, ``succeeded`` or ``failed``; every write of it is
  guarded in SQL by the transition table of ``paygrid.domain.reports``. A succeeded run has
  its file and ``succeeded_at``; a failed one its ``error``.
- The file lives in its own table (one row per succeeded run, same merchant and mode), so
  listing runs never reads a file.
- ``payments_by_created``: a summary reads one merchant's payments created in a window by a
  range scan on it instead of walking every row of the merchant (the refunds of those with
  something refunded by ``refunds_by_payment``).

Revision ID: 0026_reports
Revises: 0025_settlements
Create Date: 2026-12-07
"""

from __future__ import annotations

from paygrid.db.migration_script import execute_script

revision = "0026_reports"
down_revision = "0025_settlements"
branch_labels = None
depends_on = None

UPGRADE = """
CREATE TABLE report_runs (
    id           text PRIMARY KEY,
    merchant_id  text NOT NULL REFERENCES merchants(id),
    livemode     boolean NOT NULL,
    report_type  text NOT NULL CHECK (report_type IN ('payments_summary')),
    parameters   jsonb NOT NULL,
    status       text NOT NULL CHECK (status IN ('queued', 'running', 'succeeded', 'failed')),
    error        text CHECK (length(error) <= 1000),
    created_at   timestamptz NOT NULL,
    started_at   timestamptz,
    succeeded_at timestamptz,
    failed_at    timestamptz,
    CHECK ((status = 'succeeded') = (succeeded_at IS NOT NULL)),
    CHECK ((status = 'failed') = (failed_at IS NOT NULL AND error IS NOT NULL))
);
CREATE INDEX report_runs_list ON report_runs (merchant_id, livemode, id);

CREATE TABLE report_run_files (
    report_run_id text PRIMARY KEY REFERENCES report_runs(id),
    merchant_id   text NOT NULL REFERENCES merchants(id),
    livemode      boolean NOT NULL,
    content_type  text NOT NULL CHECK (content_type IN ('text/csv')),
    content       bytea NOT NULL,
    row_count     integer NOT NULL CHECK (row_count >= 0),
    created_at    timestamptz NOT NULL
);

CREATE INDEX payments_by_created ON payments (merchant_id, livemode, created_at);
"""

DOWNGRADE = """
DROP INDEX payments_by_created;
DROP TABLE report_run_files;
DROP TABLE report_runs;
"""


def upgrade() -> None:
    execute_script(UPGRADE)


def downgrade() -> None:
    execute_script(DOWNGRADE)
