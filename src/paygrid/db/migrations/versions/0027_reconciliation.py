"""Reconciliation runs (issue 15 §2): a run compares one connector account's charges and
refunds at the provider with paygrid's, for a window, and records typed discrepancies.

- ``reconciliation_runs``: ``queued -> running -> completed | failed``, with its progress
  (``objects_compared``) and its counts per discrepancy type (new ones it found).
- ``reconciliation_discrepancies``: unique per (connector account, mode, type, object), so
  running the same window again finds nothing new; ``open`` until a person resolves it
  (with a note) or a healing run fixes it (``healed``).
- A scheduled (daily) run is unique per account and window start, so N workers make one.
- ``merchants.timezone``: the IANA zone whose local time the daily run is due at.

Revision ID: 0027_reconciliation
Revises: 0026_reports
Create Date: 2026-12-07
"""

from __future__ import annotations

from paygrid.db.migration_script import execute_script

revision = "0027_reconciliation"
down_revision = "0026_reports"
branch_labels = None
depends_on = None

UPGRADE = """
ALTER TABLE merchants ADD COLUMN timezone text NOT NULL DEFAULT 'UTC'
    CHECK (length(timezone) BETWEEN 1 AND 64);

CREATE TABLE reconciliation_runs (
    id                   text PRIMARY KEY,
    merchant_id          text NOT NULL REFERENCES merchants(id),
    livemode             boolean NOT NULL,
    connector_account_id text NOT NULL REFERENCES connector_accounts(id),
    window_start         timestamptz NOT NULL,
    window_end           timestamptz NOT NULL,
    heal                 boolean NOT NULL,
    trigger              text NOT NULL CHECK (trigger IN ('api', 'schedule', 'cli')),
    status               text NOT NULL
        CHECK (status IN ('queued', 'running', 'completed', 'failed')),
    objects_compared     integer NOT NULL DEFAULT 0 CHECK (objects_compared >= 0),
    counts               jsonb NOT NULL DEFAULT '{}',
    healed               integer NOT NULL DEFAULT 0 CHECK (healed >= 0),
    already_known        integer NOT NULL DEFAULT 0 CHECK (already_known >= 0),
    failure_message      text,
    created_at           timestamptz NOT NULL,
    started_at           timestamptz,
    completed_at         timestamptz,
    updated_at           timestamptz NOT NULL,
    CHECK (window_end > window_start)
);
CREATE INDEX reconciliation_runs_list ON reconciliation_runs (merchant_id, livemode, id);
CREATE UNIQUE INDEX reconciliation_runs_scheduled
    ON reconciliation_runs (connector_account_id, window_start) WHERE trigger = 'schedule';

-- A run reads one account's payments of a window through payments_by_created (0026, the
-- merchant's payments by time): no index is added to payments, which every payment writes.

CREATE TABLE reconciliation_discrepancies (
    id                   text PRIMARY KEY,
    merchant_id          text NOT NULL REFERENCES merchants(id),
    livemode             boolean NOT NULL,
    connector_account_id text NOT NULL REFERENCES connector_accounts(id),
    run_id               text NOT NULL REFERENCES reconciliation_runs(id),
    type                 text NOT NULL CHECK (type IN ('missing_at_provider',
        'missing_in_paygrid', 'amount_mismatch', 'currency_mismatch', 'status_mismatch',
        'refund_mismatch', 'fee_mismatch')),
    status               text NOT NULL CHECK (status IN ('open', 'resolved', 'healed')),
    object_key           text NOT NULL,
    payment_id           text REFERENCES payments(id),
    refund_id            text REFERENCES refunds(id),
    provider_reference   text,
    currency             char(3),
    paygrid_value        text,
    provider_value       text,
    description          text NOT NULL,
    healable             boolean NOT NULL DEFAULT false,
    resolution_note      text,
    resolved_at          timestamptz,
    healed_by_run_id     text REFERENCES reconciliation_runs(id),
    created_at           timestamptz NOT NULL,
    updated_at           timestamptz NOT NULL,
    UNIQUE (connector_account_id, livemode, type, object_key)
);
CREATE INDEX reconciliation_discrepancies_list
    ON reconciliation_discrepancies (merchant_id, livemode, id);
CREATE INDEX reconciliation_discrepancies_of_run
    ON reconciliation_discrepancies (run_id, id);
-- Resolving one (with its note) and healing are audited like every other change.
CREATE TRIGGER reconciliation_discrepancies_audit
    AFTER INSERT OR UPDATE OR DELETE ON reconciliation_discrepancies
    FOR EACH ROW EXECUTE FUNCTION paygrid_audit('reconciliation_discrepancy')
"""

DOWNGRADE = """
DROP TRIGGER reconciliation_discrepancies_audit ON reconciliation_discrepancies;
DROP TABLE reconciliation_discrepancies;
DROP TABLE reconciliation_runs;
ALTER TABLE merchants DROP COLUMN timezone
"""


def upgrade() -> None:
    execute_script(UPGRADE)


def downgrade() -> None:
    execute_script(DOWNGRADE)
