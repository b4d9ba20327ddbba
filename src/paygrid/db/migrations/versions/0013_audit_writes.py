"""The audit log's action filter gets its own index, in place of one that indexed every
entry for the legacy seal sequence.

- ``UNIQUE (merchant_id, seq)`` (0005) took an index entry for every audit row, though
  since 0011 only the rows sealed one by one before it have a ``seq``. A unique index on
  the same columns ``WHERE seq IS NOT NULL`` enforces the same (NULLs never conflicted)
  and holds only those rows; the chain head of a legacy merchant (``db/audit.py``:
  ``chain_head``) still finds its last legacy hash through it.
- The planner used that full index to read all of a merchant's entries for a list
  filtered by action (``GET /v1/audit_log?action=``), then filtered and sorted them: cost
  growing with the merchant's log, and a plan that turned into a sequential scan when the
  statistics moved (``tests/integration/test_query_plans.py``). ``audit_log_by_action``
  (merchant_id, livemode, action, id) serves that list newest first, a page at a time.

An audit row still takes five index entries, each now used by a query. (Issue 12 measured
the audit's write cost: see ``bench/pg_cost.py`` and the session report; writing the
payment path's entries inside its own statements instead of by trigger saved nothing
measurable, so the triggers stay the only writer.)

Revision ID: 0013_audit_writes
Revises: 0012_simulator_tokens
Create Date: 2026-12-07
"""

from __future__ import annotations

from paygrid.db.migration_script import execute_script

revision = "0013_audit_writes"
down_revision = "0012_simulator_tokens"
branch_labels = None
depends_on = None

UPGRADE = """
CREATE UNIQUE INDEX audit_log_legacy_seq ON audit_log (merchant_id, seq) WHERE seq IS NOT NULL;
ALTER TABLE audit_log DROP CONSTRAINT audit_log_merchant_id_seq_key;
CREATE INDEX audit_log_by_action ON audit_log (merchant_id, livemode, action, id);
"""

DOWNGRADE = """
DROP INDEX audit_log_by_action;
ALTER TABLE audit_log ADD CONSTRAINT audit_log_merchant_id_seq_key UNIQUE (merchant_id, seq);
DROP INDEX audit_log_legacy_seq;
"""


def upgrade() -> None:
    execute_script(UPGRADE)


def downgrade() -> None:
    execute_script(DOWNGRADE)
