"""The simulator's card tokens carry the card's last four digits and its test behaviour in the
token itself (as Stripe's ``pm_card_visa`` names its behaviour), so tokenizing a card writes
nothing and a charge no longer needs a token row: the foreign key from charges to tokens
goes. Tokens issued before keep their rows and are still read.

Revision ID: 0012_simulator_tokens
Revises: 0011_audit_seals
Create Date: 2026-12-07
"""

from __future__ import annotations

from paygrid.db.migration_script import execute_script

revision = "0012_simulator_tokens"
down_revision = "0011_audit_seals"
branch_labels = None
depends_on = None

UPGRADE = """
ALTER TABLE simulator.charges DROP CONSTRAINT charges_token_id_fkey;
"""

# NOT VALID: charges made with self-describing tokens (no row) stay; new charges are checked.
DOWNGRADE = """
ALTER TABLE simulator.charges ADD CONSTRAINT charges_token_id_fkey
    FOREIGN KEY (token_id) REFERENCES simulator.tokens(id) NOT VALID;
"""


def upgrade() -> None:
    execute_script(UPGRADE)


def downgrade() -> None:
    execute_script(DOWNGRADE)
