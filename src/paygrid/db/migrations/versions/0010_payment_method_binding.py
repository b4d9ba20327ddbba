"""An unattached payment method records the one payment it pays for (bound_payment_id), so
that the statement writing a payment or its attempt can claim it under the method's row lock:
two concurrent first uses of one method cannot both win.

Revision ID: 0010_payment_method_binding
Revises: 0009_provider_facts
Create Date: 2026-12-06
"""

from __future__ import annotations

from paygrid.db.migration_script import execute_script

revision = "0010_payment_method_binding"
down_revision = "0009_provider_facts"
branch_labels = None
depends_on = None

# No foreign key: it would add a check to every payment that creates its method (the
# benchmark path); payments are never deleted. Existing unattached methods are bound to the
# first payment that held them or made an attempt with them.
UPGRADE = """
ALTER TABLE payment_methods ADD COLUMN bound_payment_id text;
UPDATE payment_methods pm SET bound_payment_id = first_use.payment_id
    FROM (SELECT DISTINCT ON (payment_method_id) payment_method_id, payment_id
          FROM (SELECT payment_method_id, id AS payment_id, created_at FROM payments
                WHERE payment_method_id IS NOT NULL
                UNION ALL
                SELECT payment_method_id, payment_id, created_at FROM payment_attempts
                WHERE payment_method_id IS NOT NULL) uses
          ORDER BY payment_method_id, created_at, payment_id) first_use
    WHERE pm.id = first_use.payment_method_id AND pm.customer_id IS NULL;
"""

DOWNGRADE = """
ALTER TABLE payment_methods DROP COLUMN IF EXISTS bound_payment_id;
"""


def upgrade() -> None:
    execute_script(UPGRADE)


def downgrade() -> None:
    execute_script(DOWNGRADE)
