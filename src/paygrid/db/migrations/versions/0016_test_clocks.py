"""Test clocks (issue 13 §6): a merchant's test-mode clocks (``clock_...``), each with its
frozen time and status, and ``customers.test_clock_id``, set once when a customer is created
on a clock, so that everything of that customer runs on the clock's time.

A clock is ``advancing`` exactly while it has a target (``advancing_to``); the advance job
moves ``frozen_time`` up to it through every due moment, then clears it (status ``ready``).
Clocks exist in test mode only. Deleting a clock keeps its row (``deleted_at``), because its
customers keep referring to it.

Revision ID: 0016_test_clocks
Revises: 0015_catalog
Create Date: 2026-12-07
"""

from __future__ import annotations

from paygrid.db.migration_script import execute_script

revision = "0016_test_clocks"
down_revision = "0015_catalog"
branch_labels = None
depends_on = None

UPGRADE = """
CREATE TABLE test_clocks (
    id             text PRIMARY KEY,
    merchant_id    text NOT NULL REFERENCES merchants(id),
    livemode       boolean NOT NULL DEFAULT false CHECK (NOT livemode),
    name           text CHECK (length(name) <= 300),
    frozen_time    timestamptz NOT NULL,
    status         text NOT NULL DEFAULT 'ready'
                   CHECK (status IN ('ready', 'advancing', 'internal_failure')),
    advancing_to   timestamptz,
    failure_reason text,
    created_at     timestamptz NOT NULL,
    deletes_after  timestamptz NOT NULL,
    deleted_at     timestamptz,
    CHECK ((status = 'advancing') = (advancing_to IS NOT NULL)),
    CHECK (advancing_to IS NULL OR advancing_to >= frozen_time)
);
CREATE INDEX test_clocks_list ON test_clocks (merchant_id, livemode, id)
    WHERE deleted_at IS NULL;
CREATE INDEX test_clocks_advancing ON test_clocks (id) WHERE status = 'advancing';

ALTER TABLE customers ADD COLUMN test_clock_id text REFERENCES test_clocks(id);
CREATE INDEX customers_by_test_clock ON customers (test_clock_id)
    WHERE test_clock_id IS NOT NULL;
"""

DOWNGRADE = """
ALTER TABLE customers DROP COLUMN test_clock_id;
DROP TABLE test_clocks;
"""


def upgrade() -> None:
    execute_script(UPGRADE)


def downgrade() -> None:
    execute_script(DOWNGRADE)
