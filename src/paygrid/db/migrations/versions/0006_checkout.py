"""Hosted checkout sessions, and the publishable key each merchant's checkout page embeds.

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
    -- Sent back by the page's forms: a post must come from a page paygrid rendered.
    form_token           text NOT NULL,
    expires_at           timestamptz NOT NULL,
    completed_at         timestamptz,
    created_at           timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX checkout_sessions_list ON checkout_sessions (merchant_id, livemode, id);

-- Publishable keys are public (they only tokenize cards): the one the hosted page embeds
-- is kept in plain text here (its api_keys row still holds only its hash).
CREATE TABLE checkout_keys (
    merchant_id text NOT NULL REFERENCES merchants(id),
    livemode    boolean NOT NULL,
    api_key_id  text NOT NULL REFERENCES api_keys(id),
    key         text NOT NULL,
    PRIMARY KEY (merchant_id, livemode)
);

CREATE TRIGGER checkout_sessions_audit AFTER INSERT OR UPDATE OR DELETE ON checkout_sessions
    FOR EACH ROW EXECUTE FUNCTION paygrid_audit('checkout_session', 'form_token');
"""

DOWNGRADE = """
DROP TRIGGER checkout_sessions_audit ON checkout_sessions;
DROP TABLE checkout_keys;
DROP TABLE checkout_sessions;
"""


def upgrade() -> None:
    execute_script(UPGRADE)


def downgrade() -> None:
    execute_script(DOWNGRADE)
