"""Dashboard users (argon2 password hashes, a role each) and their login sessions.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-22
"""

from __future__ import annotations

from paygrid.db.migration_script import execute_script

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

UPGRADE = """
CREATE TABLE dashboard_users (
    id            text PRIMARY KEY,
    merchant_id   text NOT NULL REFERENCES merchants(id),
    email         text NOT NULL UNIQUE,
    password_hash text NOT NULL,
    role          text NOT NULL CHECK (role IN ('admin', 'operator', 'support', 'viewer')),
    created_at    timestamptz NOT NULL DEFAULT now(),
    last_login_at timestamptz,
    disabled_at   timestamptz
);

CREATE TABLE dashboard_sessions (
    token_hash  bytea PRIMARY KEY,
    user_id     text NOT NULL REFERENCES dashboard_users(id),
    csrf_token  text NOT NULL,
    livemode    boolean NOT NULL DEFAULT false,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    revoked_at  timestamptz
);
CREATE INDEX dashboard_sessions_user ON dashboard_sessions (user_id);
-- Who may use the dashboard is audited like API keys (never the hash, nor each login).
CREATE TRIGGER dashboard_users_audit AFTER INSERT OR UPDATE OR DELETE ON dashboard_users
    FOR EACH ROW EXECUTE FUNCTION paygrid_audit('dashboard_user', 'password_hash', 'last_login_at');
"""

DOWNGRADE = """
DROP TABLE dashboard_sessions, dashboard_users;
"""


def upgrade() -> None:
    execute_script(UPGRADE)


def downgrade() -> None:
    execute_script(DOWNGRADE)
