"""Payment links (issue 14 §6): ``payment_links`` (``plink_...``), their
``payment_link_line_items`` (a price and a quantity each), and ``payment_link_sessions``,
the checkout sessions opened from a link and how each ended.

- A link's public ``slug`` is a random token (``/l/{slug}``), UNIQUE.
- The completion limit holds under concurrency: ``reserved_count`` counts the sessions
  paying now plus those completed, and a slot is taken by one guarded
  ``UPDATE ... SET reserved_count = reserved_count + 1 WHERE completion_limit IS NULL OR
  reserved_count < completion_limit`` before any money moves; a failed payment (or a stale
  reservation) gives it back. ``completed_count`` counts the completions.
- A session's row goes ``open`` -> ``reserved`` -> ``completed`` (or back to ``released``,
  which may reserve again); it names the payment, subscription and customer it made.
- ``payment_links`` is audited like the catalog's tables, except its two counters (a
  reservation is not a change anyone made to the link; ``payment_link_sessions`` records
  each one).

Revision ID: 0024_payment_links
Revises: 0023_emails
Create Date: 2026-12-07
"""

from __future__ import annotations

from paygrid.db.migration_script import execute_script

revision = "0024_payment_links"
down_revision = "0023_emails"
branch_labels = None
depends_on = None

UPGRADE = """
CREATE TABLE payment_links (
    id                   text PRIMARY KEY,
    merchant_id          text NOT NULL REFERENCES merchants(id),
    livemode             boolean NOT NULL,
    slug                 text NOT NULL UNIQUE,
    active               boolean NOT NULL DEFAULT true,
    currency             char(3) NOT NULL,
    -- The recurrence all its prices share, or NULL for a one-time link.
    recurring_interval   text CHECK (recurring_interval IN ('day', 'week', 'month', 'year')),
    completion_limit     integer CHECK (completion_limit BETWEEN 1 AND 1000000),
    reserved_count       integer NOT NULL DEFAULT 0 CHECK (reserved_count >= 0),
    completed_count      integer NOT NULL DEFAULT 0 CHECK (completed_count >= 0),
    expires_at           timestamptz,
    after_completion     text NOT NULL
                         CHECK (after_completion IN ('hosted_confirmation', 'redirect')),
    redirect_url         text,
    metadata             jsonb NOT NULL DEFAULT '{}',
    created_at           timestamptz NOT NULL,
    updated_at           timestamptz NOT NULL,
    CHECK (completion_limit IS NULL OR reserved_count <= completion_limit),
    CHECK (completed_count <= reserved_count),
    CHECK ((after_completion = 'redirect') = (redirect_url IS NOT NULL))
);
CREATE INDEX payment_links_list ON payment_links (merchant_id, livemode, id);

CREATE TABLE payment_link_line_items (
    id              text PRIMARY KEY,
    payment_link_id text NOT NULL REFERENCES payment_links(id) ON DELETE CASCADE,
    merchant_id     text NOT NULL REFERENCES merchants(id),
    livemode        boolean NOT NULL,
    position        integer NOT NULL,
    price_id        text NOT NULL REFERENCES prices(id),
    quantity        integer NOT NULL CHECK (quantity BETWEEN 1 AND 1000000),
    UNIQUE (payment_link_id, position)
);

CREATE TABLE payment_link_sessions (
    checkout_session_id text PRIMARY KEY REFERENCES checkout_sessions(id),
    payment_link_id     text NOT NULL REFERENCES payment_links(id),
    merchant_id         text NOT NULL REFERENCES merchants(id),
    livemode            boolean NOT NULL,
    status              text NOT NULL DEFAULT 'open'
                        CHECK (status IN ('open', 'reserved', 'completed', 'released')),
    payment_id          text REFERENCES payments(id),
    subscription_id     text REFERENCES subscriptions(id),
    customer_id         text REFERENCES customers(id),
    customer_email      text,
    reserved_at         timestamptz,
    completed_at        timestamptz,
    created_at          timestamptz NOT NULL,
    CHECK ((status = 'completed') = (completed_at IS NOT NULL))
);
CREATE INDEX payment_link_sessions_by_link
    ON payment_link_sessions (payment_link_id, created_at DESC);
CREATE INDEX payment_link_sessions_reserved
    ON payment_link_sessions (payment_link_id, reserved_at) WHERE status = 'reserved';

CREATE TRIGGER payment_links_audit AFTER INSERT OR UPDATE OR DELETE ON payment_links
    FOR EACH ROW EXECUTE FUNCTION paygrid_audit('payment_link', 'reserved_count',
                                                'completed_count');
"""

DOWNGRADE = """
DROP TRIGGER payment_links_audit ON payment_links;
DROP TABLE payment_link_sessions;
DROP TABLE payment_link_line_items;
DROP TABLE payment_links;
"""


def upgrade() -> None:
    execute_script(UPGRADE)


def downgrade() -> None:
    execute_script(DOWNGRADE)
