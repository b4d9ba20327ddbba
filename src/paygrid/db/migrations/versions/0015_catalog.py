"""The catalog (issue 13 §2): ``products`` and their ``prices``, per merchant and mode, as
Stripe has them. A price is a unit amount in a currency's minor units, one-time or recurring
(every ``recurring_interval_count`` days, weeks, months or years, one year at most in all).
A price's amount, currency, product and recurrence never change once written; its lookup key
is unique among the tenant's active prices. A product is deleted (a real ``DELETE``) only
while no price names it: the foreign key from ``prices`` refuses anything else. Both tables
are audited like the payment core's.

Revision ID: 0015_catalog
Revises: 0014_saved_methods
Create Date: 2026-12-07
"""

from __future__ import annotations

from paygrid.db.migration_script import execute_script

revision = "0015_catalog"
down_revision = "0014_saved_methods"
branch_labels = None
depends_on = None

UPGRADE = """
CREATE TABLE products (
    id          text PRIMARY KEY,
    merchant_id text NOT NULL REFERENCES merchants(id),
    livemode    boolean NOT NULL,
    name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 250),
    description text CHECK (length(description) <= 1000),
    active      boolean NOT NULL DEFAULT true,
    metadata    jsonb NOT NULL DEFAULT '{}',
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX products_list ON products (merchant_id, livemode, id);

CREATE TABLE prices (
    id                       text PRIMARY KEY,
    merchant_id              text NOT NULL REFERENCES merchants(id),
    livemode                 boolean NOT NULL,
    product_id               text NOT NULL REFERENCES products(id),
    currency                 char(3) NOT NULL,
    unit_amount              bigint NOT NULL CHECK (unit_amount > 0),
    type                     text NOT NULL CHECK (type IN ('one_time', 'recurring')),
    recurring_interval       text CHECK (recurring_interval IN ('day', 'week', 'month', 'year')),
    recurring_interval_count integer,
    active                   boolean NOT NULL DEFAULT true,
    lookup_key               text CHECK (length(lookup_key) BETWEEN 1 AND 200),
    nickname                 text CHECK (length(nickname) <= 250),
    metadata                 jsonb NOT NULL DEFAULT '{}',
    created_at               timestamptz NOT NULL DEFAULT now(),
    updated_at               timestamptz NOT NULL DEFAULT now(),
    -- A recurring price has both recurrence columns, a one-time price neither.
    CHECK ((type = 'recurring') = (recurring_interval IS NOT NULL)),
    CHECK ((recurring_interval IS NULL) = (recurring_interval_count IS NULL)),
    -- Stripe's rule: at most one year between two billing dates.
    CHECK (
        recurring_interval IS NULL
        OR (recurring_interval = 'day' AND recurring_interval_count BETWEEN 1 AND 365)
        OR (recurring_interval = 'week' AND recurring_interval_count BETWEEN 1 AND 52)
        OR (recurring_interval = 'month' AND recurring_interval_count BETWEEN 1 AND 12)
        OR (recurring_interval = 'year' AND recurring_interval_count = 1)
    )
);
CREATE INDEX prices_list ON prices (merchant_id, livemode, id);
CREATE INDEX prices_by_product ON prices (product_id, id);
CREATE UNIQUE INDEX prices_active_lookup_key ON prices (merchant_id, livemode, lookup_key)
    WHERE active AND lookup_key IS NOT NULL;

CREATE TRIGGER products_audit AFTER INSERT OR UPDATE OR DELETE ON products
    FOR EACH ROW EXECUTE FUNCTION paygrid_audit('product');
CREATE TRIGGER prices_audit AFTER INSERT OR UPDATE OR DELETE ON prices
    FOR EACH ROW EXECUTE FUNCTION paygrid_audit('price');
"""

DOWNGRADE = """
DROP TRIGGER prices_audit ON prices;
DROP TRIGGER products_audit ON products;
DROP TABLE prices;
DROP TABLE products;
"""


def upgrade() -> None:
    execute_script(UPGRADE)


def downgrade() -> None:
    execute_script(DOWNGRADE)
