"""Settlements and fees (issue 15 §1): what a provider paid out (a Stripe payout, a Paystack
settlement) and the transactions it contains, imported per connector account; the fee and
net of each payment and refund once the provider reports them.

- ``gross - fee = net`` exactly, in minor units, for every settlement and every settlement
  transaction (CHECK constraints): provider data that breaks it is never stored; the import
  records a row in ``settlement_import_errors`` instead.
- A settlement is unique per (connector account, provider id) and a transaction per
  (connector account, provider id), so re-importing changes nothing.
- A transaction is linked to the paygrid payment or refund it moved money for (at most one
  of them), found by the provider's reference; ``NULL`` when paygrid has no such object
  (reconciliation reports it).
- Signs follow the balance: a charge is positive, a refund negative (its ``gross`` is minus
  the refunded amount, ``net = gross - fee``).
- ``payments.fee``/``payments.net`` and ``refunds.fee``/``refunds.net``: NULL until known,
  then both set, in the object's currency (``net = gross - fee`` of its transactions).

Revision ID: 0025_settlements
Revises: 0024_payment_links
Create Date: 2026-12-07
"""

from __future__ import annotations

from paygrid.db.migration_script import execute_script

revision = "0025_settlements"
down_revision = "0024_payment_links"
branch_labels = None
depends_on = None

UPGRADE = """
ALTER TABLE payments ADD COLUMN fee bigint, ADD COLUMN net bigint,
    ADD CONSTRAINT payments_fee_known CHECK ((fee IS NULL) = (net IS NULL));
ALTER TABLE refunds ADD COLUMN fee bigint, ADD COLUMN net bigint,
    ADD CONSTRAINT refunds_fee_known CHECK ((fee IS NULL) = (net IS NULL));

CREATE TABLE settlements (
    id                     text PRIMARY KEY,
    merchant_id            text NOT NULL REFERENCES merchants(id),
    livemode               boolean NOT NULL,
    connector_account_id   text NOT NULL REFERENCES connector_accounts(id),
    provider               text NOT NULL,
    provider_settlement_id text NOT NULL CHECK (length(provider_settlement_id) BETWEEN 1 AND 255),
    status                 text NOT NULL
        CHECK (status IN ('pending', 'in_transit', 'paid', 'failed', 'canceled')),
    currency               char(3) NOT NULL,
    gross                  bigint NOT NULL,
    fee                    bigint NOT NULL,
    net                    bigint NOT NULL,
    transaction_count      integer NOT NULL DEFAULT 0 CHECK (transaction_count >= 0),
    period_start           timestamptz,
    period_end             timestamptz,
    arrival_date           timestamptz NOT NULL,
    provider_created_at    timestamptz NOT NULL,
    created_at             timestamptz NOT NULL,
    updated_at             timestamptz NOT NULL,
    UNIQUE (connector_account_id, provider_settlement_id),
    CHECK (gross - fee = net),
    CHECK (period_end IS NULL OR period_start IS NULL OR period_end >= period_start)
);
CREATE INDEX settlements_list ON settlements (merchant_id, livemode, id);
CREATE INDEX settlements_by_account ON settlements (connector_account_id, id);
CREATE INDEX settlements_by_arrival ON settlements (merchant_id, livemode, arrival_date, id);

CREATE TABLE settlement_transactions (
    id                      text PRIMARY KEY,
    merchant_id             text NOT NULL REFERENCES merchants(id),
    livemode                boolean NOT NULL,
    connector_account_id    text NOT NULL REFERENCES connector_accounts(id),
    settlement_id           text NOT NULL REFERENCES settlements(id),
    provider_transaction_id text NOT NULL
        CHECK (length(provider_transaction_id) BETWEEN 1 AND 255),
    type                    text NOT NULL
        CHECK (type IN ('charge', 'refund', 'adjustment', 'fee', 'other')),
    provider_source_id      text,
    provider_reference      text,
    payment_id              text REFERENCES payments(id),
    refund_id               text REFERENCES refunds(id),
    currency                char(3) NOT NULL,
    gross                   bigint NOT NULL,
    fee                     bigint NOT NULL,
    net                     bigint NOT NULL,
    provider_created_at     timestamptz NOT NULL,
    created_at              timestamptz NOT NULL,
    UNIQUE (connector_account_id, provider_transaction_id),
    CHECK (gross - fee = net),
    CHECK (payment_id IS NULL OR refund_id IS NULL)
);
CREATE INDEX settlement_transactions_of_settlement
    ON settlement_transactions (settlement_id, id);
CREATE INDEX settlement_transactions_list ON settlement_transactions (merchant_id, livemode, id);
CREATE INDEX settlement_transactions_by_payment ON settlement_transactions (payment_id)
    WHERE payment_id IS NOT NULL;
CREATE INDEX settlement_transactions_by_refund ON settlement_transactions (refund_id)
    WHERE refund_id IS NOT NULL;
CREATE INDEX settlement_transactions_unlinked
    ON settlement_transactions (connector_account_id, provider_reference)
    WHERE payment_id IS NULL AND refund_id IS NULL;

CREATE TABLE settlement_import_errors (
    id                   text PRIMARY KEY,
    merchant_id          text NOT NULL REFERENCES merchants(id),
    livemode             boolean NOT NULL,
    connector_account_id text NOT NULL REFERENCES connector_accounts(id),
    provider_object_id   text NOT NULL,
    code                 text NOT NULL CHECK (code IN ('amounts_inconsistent', 'malformed')),
    message              text NOT NULL,
    payload              jsonb NOT NULL DEFAULT '{}',
    created_at           timestamptz NOT NULL,
    UNIQUE (connector_account_id, provider_object_id, code)
);
CREATE INDEX settlement_import_errors_list
    ON settlement_import_errors (merchant_id, livemode, id)
"""

DOWNGRADE = """
DROP TABLE settlement_import_errors;
DROP TABLE settlement_transactions;
DROP TABLE settlements;
ALTER TABLE refunds DROP CONSTRAINT refunds_fee_known, DROP COLUMN net, DROP COLUMN fee;
ALTER TABLE payments DROP CONSTRAINT payments_fee_known, DROP COLUMN net, DROP COLUMN fee
"""


def upgrade() -> None:
    execute_script(UPGRADE)


def downgrade() -> None:
    execute_script(DOWNGRADE)
