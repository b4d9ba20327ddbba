"""Fixes from the two outside probes (issues 11 and 18): saved-method ownership, replay
scoping, attempt recovery, login counting and the other schema changes they need.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06
"""

from __future__ import annotations

from paygrid.db.migration_script import execute_script

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

# Each block below belongs to one fix; keep statements grouped under their heading.
UPGRADE = """
-- (idempotency and permissions)
-- A stored response remembers the API key that made it and that key's scopes (a replay goes
-- only to a key that could have made the request itself). Responses that carry a secret
-- are kept sealed with the credential key ring in response_body_sealed, never in
-- response_body. Such bodies stored in plaintext before are dropped: a retry runs afresh.
ALTER TABLE idempotency_keys ADD COLUMN api_key_id text,
    ADD COLUMN api_key_scopes text[],
    ADD COLUMN response_body_sealed bytea;
DELETE FROM idempotency_keys
    WHERE position(convert_to('"secret":"', 'UTF8') in response_body) > 0;
-- A publishable key's idempotency key is stored with a 'publishable' prefix: room for
-- the longest key (255 characters) behind it.
ALTER TABLE idempotency_keys DROP CONSTRAINT idempotency_keys_key_check,
    ADD CONSTRAINT idempotency_keys_key_check CHECK (length(key) BETWEEN 1 AND 300);

-- (saved payment methods)
-- A method detached from its customer (explicitly, or by deleting or erasing the customer)
-- pays for nothing until it is attached again.
ALTER TABLE payment_methods ADD COLUMN detached_at timestamptz;
CREATE INDEX payment_methods_by_customer ON payment_methods (customer_id)
    WHERE customer_id IS NOT NULL;
UPDATE payment_methods pm SET customer_id = NULL, detached_at = c.deleted_at
    FROM customers c WHERE c.id = pm.customer_id AND c.deleted_at IS NOT NULL;

-- (attempt recovery)
-- not_sent: status sync found that the provider has no charge for an attempt whose process
-- died before the call went out. The index finds capture, void and refund calls whose
-- process died mid-call, for status sync to ask the provider about.
ALTER TABLE payment_attempts DROP CONSTRAINT payment_attempts_status_check;
ALTER TABLE payment_attempts ADD CONSTRAINT payment_attempts_status_check CHECK (status IN
    ('pending', 'authorized', 'captured', 'requires_action', 'declined', 'unknown',
     'unreachable', 'succeeded', 'failed', 'not_sent'));
CREATE INDEX payment_attempts_open_operations ON payment_attempts (created_at)
    WHERE status IN ('pending', 'unknown') AND operation <> 'authorize';

-- (dashboard logins and operations)
-- Failed dashboard sign-ins per email (its SHA-256), counted in one statement before the
-- password is checked, so concurrent attempts cannot slip past the limit.
CREATE TABLE dashboard_login_counters (
    email_hash     bytea PRIMARY KEY,
    attempts       integer NOT NULL CHECK (attempts >= 0),
    window_ends_at timestamptz NOT NULL
);
CREATE INDEX dashboard_login_counters_expiry ON dashboard_login_counters (window_ends_at);

-- (webhook URLs and input limits)

-- (indexes for scale)
-- Every list, filter and dashboard query finds its rows through an index, so its cost does
-- not grow with the table (tests/integration/test_query_plans.py explains each of them).
-- Filtered payment lists walk their filter's index newest first: status (covering the
-- dashboard's counts by state too), currency, customer (replacing the index on customer
-- alone) and the loose index scan of the dashboard's connector choices.
CREATE INDEX payments_by_status ON payments (merchant_id, livemode, status, id)
    INCLUDE (amount_received, amount_refunded);
CREATE INDEX payments_by_currency ON payments (merchant_id, livemode, currency, id);
CREATE INDEX payments_by_connector ON payments (merchant_id, livemode, connector)
    WHERE connector IS NOT NULL;
CREATE INDEX payments_by_customer_newest ON payments (customer_id, id)
    WHERE customer_id IS NOT NULL;
DROP INDEX payments_by_customer;
-- The overview's authorization rates and refunds of a day.
CREATE INDEX payment_attempts_authorize_by_created ON payment_attempts (created_at)
    WHERE operation = 'authorize';
CREATE INDEX refunds_by_created ON refunds (merchant_id, livemode, created_at);
-- An expired idempotency key is reclaimed and forgotten by the refund it created.
CREATE INDEX refunds_by_idempotency_key ON refunds (merchant_id, livemode, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
"""

DOWNGRADE = """
-- (reverse order of UPGRADE)
-- (indexes for scale)
DROP INDEX IF EXISTS refunds_by_idempotency_key;
DROP INDEX IF EXISTS refunds_by_created;
DROP INDEX IF EXISTS payment_attempts_authorize_by_created;
CREATE INDEX IF NOT EXISTS payments_by_customer ON payments (customer_id)
    WHERE customer_id IS NOT NULL;
DROP INDEX IF EXISTS payments_by_customer_newest;
DROP INDEX IF EXISTS payments_by_connector;
DROP INDEX IF EXISTS payments_by_currency;
DROP INDEX IF EXISTS payments_by_status;
-- (saved payment methods)
DROP INDEX IF EXISTS payment_methods_by_customer;
ALTER TABLE payment_methods DROP COLUMN IF EXISTS detached_at;
-- (dashboard logins and operations)
DROP TABLE IF EXISTS dashboard_login_counters;
-- (attempt recovery)
DROP INDEX IF EXISTS payment_attempts_open_operations;
UPDATE payment_attempts SET status = 'failed' WHERE status = 'not_sent';
ALTER TABLE payment_attempts DROP CONSTRAINT payment_attempts_status_check;
ALTER TABLE payment_attempts ADD CONSTRAINT payment_attempts_status_check CHECK (status IN
    ('pending', 'authorized', 'captured', 'requires_action', 'declined', 'unknown',
     'unreachable', 'succeeded', 'failed'));
-- (idempotency and permissions)
DELETE FROM idempotency_keys WHERE response_body_sealed IS NOT NULL;
DELETE FROM idempotency_keys WHERE length(key) > 255;
ALTER TABLE idempotency_keys DROP CONSTRAINT idempotency_keys_key_check,
    ADD CONSTRAINT idempotency_keys_key_check CHECK (length(key) BETWEEN 1 AND 255);
ALTER TABLE idempotency_keys DROP COLUMN response_body_sealed, DROP COLUMN api_key_scopes,
    DROP COLUMN api_key_id;
"""


def upgrade() -> None:
    execute_script(UPGRADE)


def downgrade() -> None:
    execute_script(DOWNGRADE)
