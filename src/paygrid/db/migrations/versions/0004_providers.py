"""Real providers: connector accounts (credentials encrypted at rest), routing rules, the
connector account on payments, attempts and payment methods, the status-sync schedule on
attempts, and the inbox of provider webhooks.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22
"""

from __future__ import annotations

from paygrid.db.migration_script import execute_script

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

UPGRADE = """
CREATE TABLE connector_accounts (
    id                   text PRIMARY KEY,
    merchant_id          text NOT NULL REFERENCES merchants(id),
    livemode             boolean NOT NULL,
    provider             text NOT NULL CHECK (provider IN ('stripe', 'paystack', 'simulator')),
    name                 text,
    currencies           text[] NOT NULL CHECK (cardinality(currencies) > 0),
    api_base             text CHECK (api_base IS NULL OR NOT livemode),
    credentials          bytea NOT NULL,
    secret_key_last4     text NOT NULL,
    webhook_secret_last4 text,
    status               text NOT NULL DEFAULT 'enabled'
                         CHECK (status IN ('enabled', 'disabled')),
    metadata             jsonb NOT NULL DEFAULT '{}',
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX connector_accounts_list ON connector_accounts (merchant_id, livemode, id);

CREATE TABLE routing_rules (
    id            text PRIMARY KEY,
    merchant_id   text NOT NULL REFERENCES merchants(id),
    livemode      boolean NOT NULL,
    name          text,
    priority      integer NOT NULL,
    conditions    jsonb NOT NULL DEFAULT '{}',
    destinations  jsonb NOT NULL CHECK (jsonb_array_length(destinations) > 0),
    split         text NOT NULL DEFAULT 'priority' CHECK (split IN ('priority', 'weighted')),
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX routing_rules_order ON routing_rules (merchant_id, livemode, priority, id);

ALTER TABLE payments ADD COLUMN connector_account_id text REFERENCES connector_accounts(id);
ALTER TABLE payments ADD COLUMN receipt_email text;
ALTER TABLE payments ADD COLUMN payment_method_types text[] NOT NULL DEFAULT '{card}';
ALTER TABLE payment_methods ADD COLUMN connector_account_id text
    REFERENCES connector_accounts(id);
ALTER TABLE payment_methods ADD COLUMN channel text;
ALTER TABLE payment_methods ADD COLUMN card_country text;
ALTER TABLE payment_attempts ADD COLUMN connector_account_id text
    REFERENCES connector_accounts(id);
ALTER TABLE payment_attempts ADD COLUMN sync_count integer NOT NULL DEFAULT 0;
ALTER TABLE payment_attempts ADD COLUMN next_sync_at timestamptz;
CREATE INDEX payment_attempts_due_sync ON payment_attempts (next_sync_at)
    WHERE next_sync_at IS NOT NULL;
ALTER TABLE refunds ADD COLUMN next_sync_at timestamptz;
CREATE INDEX refunds_due_sync ON refunds (next_sync_at) WHERE next_sync_at IS NOT NULL;
CREATE INDEX refunds_by_provider_reference ON refunds (provider_reference)
    WHERE provider_reference IS NOT NULL;
CREATE INDEX payment_attempts_by_provider_reference ON payment_attempts (provider_reference)
    WHERE provider_reference IS NOT NULL;

-- A paygrid customer's counterpart at a provider (a Stripe Customer), created on first need.
CREATE TABLE connector_customers (
    customer_id          text NOT NULL REFERENCES customers(id),
    connector_account_id text NOT NULL REFERENCES connector_accounts(id),
    reference            text NOT NULL,
    created_at           timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (customer_id, connector_account_id)
);

CREATE TABLE provider_webhook_events (
    id                   text PRIMARY KEY,
    connector_account_id text NOT NULL REFERENCES connector_accounts(id),
    provider_event_id    text NOT NULL,
    type                 text NOT NULL,
    body                 bytea NOT NULL,
    headers              jsonb NOT NULL DEFAULT '{}',  -- the signature headers only
    status               text NOT NULL DEFAULT 'pending'
                         CHECK (status IN ('pending', 'applied', 'ignored', 'unmatched')),
    attempts             integer NOT NULL DEFAULT 0,
    last_error           text,
    received_at          timestamptz NOT NULL DEFAULT now(),
    processed_at         timestamptz,
    UNIQUE (connector_account_id, provider_event_id)
);
"""

DOWNGRADE = """
DROP TABLE provider_webhook_events, connector_customers;
DROP INDEX payment_attempts_by_provider_reference;
DROP INDEX refunds_by_provider_reference;
ALTER TABLE refunds DROP COLUMN next_sync_at;
ALTER TABLE payment_attempts DROP COLUMN next_sync_at, DROP COLUMN sync_count,
    DROP COLUMN connector_account_id;
ALTER TABLE payment_methods DROP COLUMN card_country, DROP COLUMN channel, DROP COLUMN connector_account_id;
ALTER TABLE payments DROP COLUMN payment_method_types, DROP COLUMN receipt_email,
    DROP COLUMN connector_account_id;
DROP TABLE routing_rules, connector_accounts;
"""


def upgrade() -> None:
    execute_script(UPGRADE)


def downgrade() -> None:
    execute_script(DOWNGRADE)
