"""Payment core: merchants, API keys, customers, payment methods, payments, attempts,
refunds, the event outbox, idempotency keys and the simulator's own schema.

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""

from __future__ import annotations

from paygrid.db.migration_script import execute_script

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

PAYMENT_STATUSES = (
    "'requires_payment_method','requires_confirmation','requires_action','processing',"
    "'requires_capture','succeeded','canceled'"
)

UPGRADE = f"""
CREATE TABLE merchants (
    id          text PRIMARY KEY,
    name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE api_keys (
    id            text PRIMARY KEY,
    merchant_id   text NOT NULL REFERENCES merchants(id),
    kind          text NOT NULL CHECK (kind IN ('secret', 'publishable')),
    livemode      boolean NOT NULL,
    lookup_prefix text NOT NULL,
    key_hash      bytea NOT NULL UNIQUE,
    last4         text NOT NULL,
    name          text,
    created_at    timestamptz NOT NULL DEFAULT now(),
    revoked_at    timestamptz,
    last_used_at  timestamptz
);
CREATE INDEX api_keys_lookup ON api_keys (lookup_prefix);
CREATE INDEX api_keys_merchant ON api_keys (merchant_id);

CREATE TABLE customers (
    id          text PRIMARY KEY,
    merchant_id text NOT NULL REFERENCES merchants(id),
    livemode    boolean NOT NULL,
    email       text,
    name        text,
    phone       text,
    metadata    jsonb NOT NULL DEFAULT '{{}}',
    created_at  timestamptz NOT NULL DEFAULT now(),
    deleted_at  timestamptz
);
CREATE INDEX customers_list ON customers (merchant_id, livemode, id) WHERE deleted_at IS NULL;

CREATE TABLE payment_methods (
    id                  text PRIMARY KEY,
    merchant_id         text NOT NULL REFERENCES merchants(id),
    livemode            boolean NOT NULL,
    customer_id         text REFERENCES customers(id),
    type                text NOT NULL CHECK (type IN ('card')),
    card_brand          text NOT NULL,
    card_last4          text NOT NULL CHECK (card_last4 ~ '^[0-9]{{4}}$'),
    card_exp_month      smallint NOT NULL CHECK (card_exp_month BETWEEN 1 AND 12),
    card_exp_year       smallint NOT NULL,
    connector           text NOT NULL,
    connector_reference text NOT NULL,
    metadata            jsonb NOT NULL DEFAULT '{{}}',
    created_at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX payment_methods_list ON payment_methods (merchant_id, livemode, id);

CREATE TABLE payments (
    id                  text PRIMARY KEY,
    merchant_id         text NOT NULL REFERENCES merchants(id),
    livemode            boolean NOT NULL,
    status              text NOT NULL CHECK (status IN ({PAYMENT_STATUSES})),
    amount              bigint NOT NULL CHECK (amount > 0),
    currency            char(3) NOT NULL,
    capture_method      text NOT NULL CHECK (capture_method IN ('automatic', 'manual')),
    amount_capturable   bigint NOT NULL DEFAULT 0 CHECK (amount_capturable BETWEEN 0 AND amount),
    amount_received     bigint NOT NULL DEFAULT 0 CHECK (amount_received BETWEEN 0 AND amount),
    amount_refunded     bigint NOT NULL DEFAULT 0
                        CHECK (amount_refunded >= 0 AND amount_refunded <= amount_received),
    customer_id         text REFERENCES customers(id),
    payment_method_id   text REFERENCES payment_methods(id),
    connector           text,
    description         text,
    return_url          text,
    order_id            text,
    reference           text NOT NULL,
    metadata            jsonb NOT NULL DEFAULT '{{}}',
    last_payment_error  jsonb,
    next_action         jsonb,
    cancellation_reason text,
    canceled_at         timestamptz,
    idempotency_key     text,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    UNIQUE (merchant_id, livemode, reference),
    UNIQUE (merchant_id, livemode, idempotency_key)
);
CREATE INDEX payments_list ON payments (merchant_id, livemode, id);
CREATE INDEX payments_by_customer ON payments (customer_id) WHERE customer_id IS NOT NULL;

CREATE TABLE refunds (
    id                 text PRIMARY KEY,
    merchant_id        text NOT NULL REFERENCES merchants(id),
    livemode           boolean NOT NULL,
    payment_id         text NOT NULL REFERENCES payments(id),
    amount             bigint NOT NULL CHECK (amount > 0),
    currency           char(3) NOT NULL,
    status             text NOT NULL CHECK (status IN ('pending', 'succeeded', 'failed')),
    reason             text CHECK (reason IN ('duplicate', 'fraudulent', 'requested_by_customer')),
    metadata           jsonb NOT NULL DEFAULT '{{}}',
    failure_reason     text,
    provider_reference text,
    idempotency_key    text,
    created_at         timestamptz NOT NULL DEFAULT now(),
    UNIQUE (payment_id, idempotency_key)
);
CREATE INDEX refunds_list ON refunds (merchant_id, livemode, id);
CREATE INDEX refunds_by_payment ON refunds (payment_id);

CREATE TABLE payment_attempts (
    id                 text PRIMARY KEY,
    payment_id         text NOT NULL REFERENCES payments(id),
    operation          text NOT NULL CHECK (operation IN ('authorize', 'capture', 'void', 'refund')),
    connector          text NOT NULL,
    status             text NOT NULL CHECK (status IN
                       ('pending', 'authorized', 'captured', 'requires_action', 'declined',
                        'unknown', 'unreachable', 'succeeded', 'failed')),
    amount             bigint NOT NULL CHECK (amount >= 0),
    payment_method_id  text REFERENCES payment_methods(id),
    refund_id          text REFERENCES refunds(id),
    provider_reference text,
    error_code         text,
    decline_code       text,
    error_message      text,
    latency_ms         integer,
    created_at         timestamptz NOT NULL DEFAULT now(),
    completed_at       timestamptz
);
CREATE INDEX payment_attempts_payment ON payment_attempts (payment_id, id);
-- At most one authorize, capture or void call in flight per payment (refunds run side by side).
CREATE UNIQUE INDEX payment_attempts_one_in_flight ON payment_attempts (payment_id)
    WHERE status = 'pending' AND operation <> 'refund';

CREATE TABLE events (
    id          text PRIMARY KEY,
    merchant_id text NOT NULL REFERENCES merchants(id),
    livemode    boolean NOT NULL,
    type        text NOT NULL,
    object_id   text NOT NULL,
    data        jsonb NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX events_list ON events (merchant_id, livemode, id);
CREATE INDEX events_by_object ON events (object_id);

CREATE TABLE idempotency_keys (
    merchant_id     text NOT NULL REFERENCES merchants(id),
    livemode        boolean NOT NULL,
    key             text NOT NULL CHECK (length(key) BETWEEN 1 AND 255),
    request_method  text NOT NULL,
    request_path    text NOT NULL,
    request_hash    bytea NOT NULL,
    response_status integer,
    response_body   bytea,
    locked_at       timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (merchant_id, livemode, key),
    CHECK ((response_status IS NULL) = (locked_at IS NOT NULL))
);
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);

CREATE SCHEMA simulator;
CREATE TABLE simulator.tokens (
    id         text PRIMARY KEY,
    brand      text NOT NULL,
    last4      text NOT NULL,
    exp_month  smallint NOT NULL,
    exp_year   smallint NOT NULL,
    behavior   text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE simulator.charges (
    id              text PRIMARY KEY,
    idempotency_key text NOT NULL UNIQUE,
    token_id        text NOT NULL REFERENCES simulator.tokens(id),
    amount          bigint NOT NULL CHECK (amount > 0),
    currency        char(3) NOT NULL,
    capture         boolean NOT NULL,
    status          text NOT NULL CHECK (status IN
                    ('requires_action', 'authorized', 'captured', 'voided', 'declined')),
    amount_captured bigint NOT NULL DEFAULT 0 CHECK (amount_captured BETWEEN 0 AND amount),
    amount_refunded bigint NOT NULL DEFAULT 0
                    CHECK (amount_refunded BETWEEN 0 AND amount_captured),
    decline_code    text,
    return_url      text NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE simulator.operations (
    idempotency_key text PRIMARY KEY,
    id              text NOT NULL UNIQUE,
    charge_id       text NOT NULL REFERENCES simulator.charges(id),
    kind            text NOT NULL CHECK (kind IN ('capture', 'void', 'refund')),
    amount          bigint NOT NULL CHECK (amount >= 0),
    succeeded       boolean NOT NULL,
    failure_reason  text,
    created_at      timestamptz NOT NULL DEFAULT now()
);
"""

DOWNGRADE = """
DROP SCHEMA simulator CASCADE;
DROP TABLE idempotency_keys, events, payment_attempts, refunds, payments, payment_methods,
    customers, api_keys, merchants;
"""


def upgrade() -> None:
    execute_script(UPGRADE)


def downgrade() -> None:
    execute_script(DOWNGRADE)
