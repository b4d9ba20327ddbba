"""The audit log: every change to merchants, keys, customers, payment methods, payments,
refunds, connector accounts, routing rules and webhook endpoints, written by triggers in the
changing transaction, with the actor, request id and IP the application put in session
settings. Append-only (a guard trigger), hash-chained per merchant by the sealer.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22
"""

from __future__ import annotations

from alembic import op

from paygrid.db.migration_script import execute_script

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

# (table, object type, columns never copied into the log: secrets and noise)
AUDITED = (
    ("merchants", "merchant", ()),
    ("api_keys", "api_key", ("key_hash", "lookup_prefix", "last_used_at")),
    ("customers", "customer", ()),
    ("payment_methods", "payment_method", ()),
    ("payments", "payment", ()),
    ("refunds", "refund", ()),
    ("connector_accounts", "connector_account", ("credentials",)),
    ("routing_rules", "routing_rule", ()),
    (
        "webhook_endpoints",
        "webhook_endpoint",
        ("secret_ciphertext", "previous_secret_ciphertext"),
    ),
)

TABLES = """
CREATE SEQUENCE audit_log_position;

CREATE TABLE audit_log (
    id          text PRIMARY KEY,
    merchant_id text NOT NULL REFERENCES merchants(id),
    livemode    boolean NOT NULL,
    actor       text NOT NULL,
    action      text NOT NULL,
    object_type text NOT NULL,
    object_id   text NOT NULL,
    before      jsonb,
    after       jsonb,
    request_id  text,
    ip          text,
    created_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    -- Filled by the sealer: the position in the merchant's chain, the digest of the entry,
    -- the previous entry's hash and this entry's hash = sha256(prev_hash || digest).
    seq         bigint,
    digest      bytea,
    prev_hash   bytea,
    hash        bytea,
    sealed_at   timestamptz,
    redacted_at timestamptz,
    UNIQUE (merchant_id, seq)
);
CREATE INDEX audit_log_list ON audit_log (merchant_id, livemode, id);
CREATE INDEX audit_log_by_object ON audit_log (object_id);
CREATE INDEX audit_log_unsealed ON audit_log (merchant_id, id) WHERE seq IS NULL;
"""

AUDIT_FUNCTION = """
CREATE FUNCTION paygrid_audit() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    hidden text[] := TG_ARGV[1:];
    old_row jsonb;
    new_row jsonb;
    subject jsonb;
BEGIN
    IF TG_OP <> 'INSERT' THEN old_row := to_jsonb(OLD) - hidden; END IF;
    IF TG_OP <> 'DELETE' THEN new_row := to_jsonb(NEW) - hidden; END IF;
    IF TG_OP = 'UPDATE' AND old_row = new_row THEN
        RETURN NULL;  -- only hidden columns changed (e.g. a key's last use)
    END IF;
    subject := coalesce(new_row, old_row);
    INSERT INTO audit_log (id, merchant_id, livemode, actor, action, object_type, object_id,
                           before, after, request_id, ip)
    VALUES (
        'aud_' || lpad(to_hex(nextval('audit_log_position')), 16, '0'),
        CASE WHEN TG_TABLE_NAME = 'merchants' THEN subject->>'id'
             ELSE subject->>'merchant_id' END,
        coalesce((subject->>'livemode')::boolean, false),
        coalesce(nullif(current_setting('paygrid.actor', true), ''), 'system'),
        TG_ARGV[0] || '.' || CASE TG_OP WHEN 'INSERT' THEN 'created'
                                        WHEN 'UPDATE' THEN 'updated'
                                        ELSE 'deleted' END,
        TG_ARGV[0],
        subject->>'id',
        old_row,
        new_row,
        nullif(current_setting('paygrid.request_id', true), ''),
        nullif(current_setting('paygrid.ip', true), '')
    );
    RETURN NULL;
END;
$$
"""

# Append-only: rows are never deleted; an update may only seal a row (once), or redact
# personal data inside before/after during a GDPR erasure (paygrid.audit_redaction = on).
GUARD_FUNCTION = """
CREATE FUNCTION paygrid_audit_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'audit_log is append-only';
    END IF;
    IF (NEW.id, NEW.merchant_id, NEW.livemode, NEW.actor, NEW.action, NEW.object_type,
        NEW.object_id, NEW.request_id, NEW.ip, NEW.created_at)
       IS DISTINCT FROM
       (OLD.id, OLD.merchant_id, OLD.livemode, OLD.actor, OLD.action, OLD.object_type,
        OLD.object_id, OLD.request_id, OLD.ip, OLD.created_at) THEN
        RAISE EXCEPTION 'audit_log is append-only';
    END IF;
    IF OLD.seq IS NULL AND NEW.before IS NOT DISTINCT FROM OLD.before
       AND NEW.after IS NOT DISTINCT FROM OLD.after
       AND NEW.redacted_at IS NOT DISTINCT FROM OLD.redacted_at THEN
        RETURN NEW;  -- sealing
    END IF;
    IF current_setting('paygrid.audit_redaction', true) = 'on'
       AND (NEW.seq, NEW.digest, NEW.prev_hash, NEW.hash, NEW.sealed_at)
           IS NOT DISTINCT FROM (OLD.seq, OLD.digest, OLD.prev_hash, OLD.hash, OLD.sealed_at)
       AND NEW.redacted_at IS NOT NULL THEN
        RETURN NEW;  -- a GDPR erasure
    END IF;
    RAISE EXCEPTION 'audit_log is append-only';
END;
$$
"""
GUARD_TRIGGER = """
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION paygrid_audit_guard()
"""


def _triggers() -> str:
    statements = []
    for table, object_type, hidden in AUDITED:
        arguments = ", ".join(f"'{a}'" for a in (object_type, *hidden))
        statements.append(
            f"CREATE TRIGGER {table}_audit AFTER INSERT OR UPDATE OR DELETE ON {table}"
            f" FOR EACH ROW EXECUTE FUNCTION paygrid_audit({arguments});"
        )
    return "\n".join(statements)


DOWNGRADE = (
    "\n".join(f"DROP TRIGGER {table}_audit ON {table};" for table, _, _ in AUDITED)
    + """
DROP TABLE audit_log;
DROP FUNCTION paygrid_audit_guard();
DROP FUNCTION paygrid_audit();
DROP SEQUENCE audit_log_position;
"""
)


def upgrade() -> None:
    execute_script(TABLES)
    op.execute(AUDIT_FUNCTION)  # function bodies hold ';', so not through execute_script
    op.execute(GUARD_FUNCTION)
    op.execute(GUARD_TRIGGER)
    execute_script(_triggers())


def downgrade() -> None:
    execute_script(DOWNGRADE)
