"""Customer billing portal sessions (issue 14 §4): ``billing_portal_sessions``
(``bps_...``), one short-lived link to a customer's portal.

- The link's token is never stored: ``token_hash`` is its SHA-256 (the token has 256 random
  bits, so a plain hash is enough; no salt is needed against guessing).
- A session must be opened before ``expires_at`` (5 minutes after it was made); the first
  browser that opens it gets a cookie whose SHA-256 is ``browser_hash`` and may use the
  portal until ``ends_at`` (1 hour after opening). ``csrf_token`` is the forms' token.
- Audited like the payment core's tables, without the three secrets.

Revision ID: 0022_billing_portal
Revises: 0021_hosted_invoices
Create Date: 2026-12-07
"""

from __future__ import annotations

from paygrid.db.migration_script import execute_script

revision = "0022_billing_portal"
down_revision = "0021_hosted_invoices"
branch_labels = None
depends_on = None

UPGRADE = """
CREATE TABLE billing_portal_sessions (
    id           text PRIMARY KEY,
    merchant_id  text NOT NULL REFERENCES merchants(id),
    livemode     boolean NOT NULL,
    customer_id  text NOT NULL REFERENCES customers(id),
    return_url   text,
    token_hash   bytea NOT NULL UNIQUE CHECK (octet_length(token_hash) = 32),
    csrf_token   text NOT NULL,
    browser_hash bytea CHECK (browser_hash IS NULL OR octet_length(browser_hash) = 32),
    created_at   timestamptz NOT NULL,
    expires_at   timestamptz NOT NULL,
    opened_at    timestamptz,
    ends_at      timestamptz,
    CHECK (expires_at > created_at),
    CHECK ((opened_at IS NULL) = (browser_hash IS NULL)),
    CHECK ((opened_at IS NULL) = (ends_at IS NULL)),
    CHECK (ends_at IS NULL OR ends_at > opened_at)
);
CREATE INDEX billing_portal_sessions_list ON billing_portal_sessions (merchant_id, livemode, id);
CREATE INDEX billing_portal_sessions_by_customer ON billing_portal_sessions (customer_id);

CREATE TRIGGER billing_portal_sessions_audit
    AFTER INSERT OR UPDATE OR DELETE ON billing_portal_sessions
    FOR EACH ROW EXECUTE FUNCTION
    paygrid_audit('billing_portal.session', 'token_hash', 'csrf_token', 'browser_hash');
"""

DOWNGRADE = """
DROP TRIGGER billing_portal_sessions_audit ON billing_portal_sessions;
DROP TABLE billing_portal_sessions;
"""


def upgrade() -> None:
    execute_script(UPGRADE)


def downgrade() -> None:
    execute_script(DOWNGRADE)
