"""Merchant webhooks: endpoints (secrets encrypted at rest), deliveries of events to
endpoints, and every delivery attempt.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22
"""

from __future__ import annotations

from alembic import op

from paygrid.db.migration_script import execute_script

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

UPGRADE = """
CREATE TABLE webhook_endpoints (
    id                          text PRIMARY KEY,
    merchant_id                 text NOT NULL REFERENCES merchants(id),
    livemode                    boolean NOT NULL,
    url                         text NOT NULL CHECK (length(url) BETWEEN 1 AND 2048),
    description                 text,
    enabled_events              text[] NOT NULL CHECK (cardinality(enabled_events) > 0),
    status                      text NOT NULL DEFAULT 'enabled'
                                CHECK (status IN ('enabled', 'disabled')),
    disabled_reason             text,
    paused                      boolean NOT NULL DEFAULT false,
    secret_ciphertext           bytea NOT NULL,
    previous_secret_ciphertext  bytea,
    previous_secret_expires_at  timestamptz,
    metadata                    jsonb NOT NULL DEFAULT '{}',
    created_at                  timestamptz NOT NULL DEFAULT now(),
    updated_at                  timestamptz NOT NULL DEFAULT now(),
    deleted_at                  timestamptz,
    CHECK ((previous_secret_ciphertext IS NULL) = (previous_secret_expires_at IS NULL))
);
CREATE INDEX webhook_endpoints_list ON webhook_endpoints (merchant_id, livemode, id)
    WHERE deleted_at IS NULL;

CREATE TABLE webhook_deliveries (
    id              text PRIMARY KEY,
    merchant_id     text NOT NULL REFERENCES merchants(id),
    livemode        boolean NOT NULL,
    endpoint_id     text NOT NULL REFERENCES webhook_endpoints(id),
    event_id        text NOT NULL REFERENCES events(id),
    status          text NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'succeeded', 'failed')),
    attempt_count   integer NOT NULL DEFAULT 0 CHECK (attempt_count >= 0),
    next_attempt_at timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    completed_at    timestamptz
);
CREATE INDEX webhook_deliveries_endpoint ON webhook_deliveries (endpoint_id, id);
CREATE INDEX webhook_deliveries_event ON webhook_deliveries (event_id, id);
CREATE INDEX webhook_deliveries_failed ON webhook_deliveries (endpoint_id, created_at)
    WHERE status = 'failed';

CREATE TABLE webhook_attempts (
    id            text PRIMARY KEY,
    delivery_id   text NOT NULL REFERENCES webhook_deliveries(id),
    attempted_at  timestamptz NOT NULL,
    status_code   integer,
    latency_ms    integer NOT NULL CHECK (latency_ms >= 0),
    response_body text CHECK (length(response_body) <= 1024),
    error         text
);
CREATE INDEX webhook_attempts_delivery ON webhook_attempts (delivery_id, id);

ALTER TABLE api_keys ADD COLUMN scopes text[] NOT NULL DEFAULT '{}';

ALTER TABLE events ADD COLUMN dispatched_at timestamptz;
CREATE INDEX events_undispatched ON events (id) WHERE dispatched_at IS NULL
"""

# Wakes event dispatchers when events commit (NOTIFY is delivered at commit, once per
# transaction). Kept apart from UPGRADE: the function body contains semicolons.
NOTIFY_FUNCTION = """
CREATE FUNCTION paygrid_notify_events() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('paygrid_events', '');
    RETURN NULL;
END
$$
"""
NOTIFY_TRIGGER = """
CREATE TRIGGER events_notify AFTER INSERT ON events
    FOR EACH STATEMENT EXECUTE FUNCTION paygrid_notify_events()
"""

DOWNGRADE = """
DROP TRIGGER events_notify ON events;
DROP FUNCTION paygrid_notify_events();
DROP INDEX events_undispatched;
ALTER TABLE api_keys DROP COLUMN scopes;
ALTER TABLE events DROP COLUMN dispatched_at;
DROP TABLE webhook_attempts, webhook_deliveries, webhook_endpoints
"""


def upgrade() -> None:
    execute_script(UPGRADE)
    op.execute(NOTIFY_FUNCTION)
    op.execute(NOTIFY_TRIGGER)


def downgrade() -> None:
    execute_script(DOWNGRADE)
