"""Providers are the connector registry's to name (each provider package declares its own
facts), so the database no longer lists them: an account's provider is checked by the
service against the registry.

Revision ID: 0009_provider_facts
Revises: 0008
Create Date: 2026-12-06
"""

from __future__ import annotations

from paygrid.db.migration_script import execute_script

revision = "0009_provider_facts"
down_revision = "0008"
branch_labels = None
depends_on = None

UPGRADE = """
ALTER TABLE connector_accounts DROP CONSTRAINT connector_accounts_provider_check;
"""

# NOT VALID: accounts of providers added since stay readable; new rows are checked again.
DOWNGRADE = """
ALTER TABLE connector_accounts ADD CONSTRAINT connector_accounts_provider_check
    CHECK (provider IN ('stripe', 'paystack', 'simulator')) NOT VALID;
"""


def upgrade() -> None:
    execute_script(UPGRADE)


def downgrade() -> None:
    execute_script(DOWNGRADE)
