"""Hosted checkout sessions.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-22
"""

from __future__ import annotations

from paygrid.db.migration_script import execute_script

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

UPGRADE = """
CREATE TABLE checkout_sessions (
    id                   text PRIMARY KEY,
    merchant_id          text NOT NULL REFERENCES merchants(id),
    livemode             boolean NOT NULL,
    status               text NOT NULL DEFAULT 'open'
                         CHECK (status IN ('open', 'complete', 'expired')),
    amount               bigint NOT NULL CHECK (amount > 0),
    currency             char(3) NOT NULL,
    customer_id          text REFERENCES customers(id),
    customer_email       text,
    description          text,
    success_url          text NOT NULL,
    cancel_url           text NOT NULL,
    payment_method_types text[] NOT NULL DEFAULT '{card}',
    metadata             jsonb NOT NULL DEFAULT '{}',
    payment_id           text UNIQUE REFERENCES payments(id),
    expires_at           timestamptz NOT NULL,
    completed_at         timestamptz,
    created_at           timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX checkout_sessions_list ON checkout_sessions (merchant_id, livemode, id);
"""

DOWNGRADE = """
DROP TABLE checkout_sessions;
"""


def upgrade() -> None:
    execute_script(UPGRADE)


def downgrade() -> None:
    execute_script(DOWNGRADE)
