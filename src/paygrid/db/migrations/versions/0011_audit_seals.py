"""The audit chain is sealed in batches, and audit writes cost less.

- **Batch seals.** The sealer no longer updates each audit row (a new version of a wide row,
  every index touched, the guard trigger fired: about 315 µs of PostgreSQL and 5.5 KB of WAL
  per payment). It appends one narrow ``audit_seals`` row per batch of a merchant's entries:
  the batch covers the merchant's entries with ids after the previous seal's ``last_id`` up
  to its own ``last_id`` (``entry_count`` of them), keeps their digests (32 bytes each, in
  id order: they name the entry that no longer matches, and a redacted entry is checked
  against the digest it was sealed with), and chains ``hash = sha256(prev_hash ||
  sha256(entry_digests))``. Audit rows are now never updated except by a GDPR redaction.
- **Existing seals are kept as they are.** Rows sealed one by one before this migration keep
  their ``seq``/``digest``/``prev_hash``/``hash``; verification walks that legacy chain
  first, and a merchant's first batch chains onto its last legacy hash. Re-sealing them
  would re-hash content that may have changed since it was sealed (and would lose the
  redacted entries' digests), so it would launder, not migrate. Rows not sealed yet are
  sealed by the next batch. The sealing columns stay, filled only for legacy rows. The
  indexes stay too: ``audit_log_unsealed`` (merchant_id, id) WHERE seq IS NULL now holds
  every batch-sealed entry and serves the sealer and verification; the (merchant_id, seq)
  unique index holds one deduplicated NULL key per merchant for new rows, and the planner
  relies on it for a merchant's list filtered by action (dropping it turned that into a
  sequential scan in ``test_query_plans``).
- **No sealing updates.** The guard now refuses every update of an entry except a redaction.
- **Cheaper audit trigger.** ``paygrid_audit`` stays a row-level trigger: statement-level
  triggers with transition tables (one per event, as PostgreSQL requires) were measured
  slower for the one-row statements that make up the payment path (a tuplestore per
  statement, a join of the old and new rows), so the function is only trimmed (no jsonb
  copy when no column is hidden). It writes the same rows as before.
- **No merchant foreign keys on audit_log, events and idempotency_keys.** Each insert took
  a ``FOR KEY SHARE`` lock on the merchant's row (8 per payment on one row, with a MultiXact
  risk under load). Nothing relies on them: merchants are never deleted (no code path
  deletes one; erasure is of customers), and every row in these tables is written with the
  merchant id of a row that keeps its own foreign key (payments, customers, keys ...) or of
  the authenticated merchant.

Downgrade: batch seals are dropped, so those entries are unsealed again and the per-row
sealer of 0005 seals them anew.

Revision ID: 0011_audit_seals
Revises: 0010_payment_method_binding
Create Date: 2026-12-07
"""

from __future__ import annotations

from alembic import op

from paygrid.db.migration_script import execute_script

revision = "0011_audit_seals"
down_revision = "0010_payment_method_binding"
branch_labels = None
depends_on = None

TABLES = """
CREATE TABLE audit_seals (
    merchant_id   text NOT NULL,
    seq           bigint NOT NULL CHECK (seq > 0),
    first_id      text NOT NULL,
    last_id       text NOT NULL,
    entry_count   integer NOT NULL CHECK (entry_count > 0),
    entry_digests bytea NOT NULL CHECK (length(entry_digests) = 32 * entry_count),
    digest        bytea NOT NULL,
    prev_hash     bytea NOT NULL,
    hash          bytea NOT NULL,
    sealed_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (merchant_id, seq),
    UNIQUE (merchant_id, last_id)
);
-- Digests are random bytes: compressing them only costs CPU.
ALTER TABLE audit_seals ALTER COLUMN entry_digests SET STORAGE EXTERNAL;

ALTER TABLE audit_log DROP CONSTRAINT audit_log_merchant_id_fkey;
ALTER TABLE events DROP CONSTRAINT events_merchant_id_fkey;
ALTER TABLE idempotency_keys DROP CONSTRAINT idempotency_keys_merchant_id_fkey;

"""

APPEND_ONLY_FUNCTION = """
CREATE FUNCTION paygrid_audit_seals_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_seals is append-only';
END;
$$
"""
APPEND_ONLY_TRIGGER = """
CREATE TRIGGER audit_seals_append_only BEFORE UPDATE OR DELETE ON audit_seals
    FOR EACH ROW EXECUTE FUNCTION paygrid_audit_seals_guard()
"""

# An update may only redact personal data inside before/after during a GDPR erasure
# (paygrid.audit_redaction = on); sealing no longer updates rows.
GUARD_FUNCTION = """
CREATE OR REPLACE FUNCTION paygrid_audit_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE'
       AND current_setting('paygrid.audit_redaction', true) = 'on'
       AND NEW.redacted_at IS NOT NULL
       AND (NEW.id, NEW.merchant_id, NEW.livemode, NEW.actor, NEW.action, NEW.object_type,
            NEW.object_id, NEW.request_id, NEW.ip, NEW.created_at,
            NEW.seq, NEW.digest, NEW.prev_hash, NEW.hash, NEW.sealed_at)
           IS NOT DISTINCT FROM
           (OLD.id, OLD.merchant_id, OLD.livemode, OLD.actor, OLD.action, OLD.object_type,
            OLD.object_id, OLD.request_id, OLD.ip, OLD.created_at,
            OLD.seq, OLD.digest, OLD.prev_hash, OLD.hash, OLD.sealed_at) THEN
        RETURN NEW;  -- a GDPR erasure
    END IF;
    RAISE EXCEPTION 'audit_log is append-only';
END;
$$
"""

# Same rows as 0005's; a table with no hidden column skips the jsonb copy of `- hidden`.
AUDIT_FUNCTION = """
CREATE OR REPLACE FUNCTION paygrid_audit() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    old_row jsonb;
    new_row jsonb;
    subject jsonb;
BEGIN
    IF TG_OP <> 'INSERT' THEN
        old_row := CASE WHEN TG_NARGS = 1 THEN to_jsonb(OLD) ELSE to_jsonb(OLD) - TG_ARGV[1:] END;
    END IF;
    IF TG_OP <> 'DELETE' THEN
        new_row := CASE WHEN TG_NARGS = 1 THEN to_jsonb(NEW) ELSE to_jsonb(NEW) - TG_ARGV[1:] END;
        IF old_row = new_row THEN
            RETURN NULL;  -- only hidden columns changed (e.g. a key's last use)
        END IF;
    END IF;
    subject := coalesce(new_row, old_row);
    INSERT INTO audit_log (id, merchant_id, livemode, actor, action, object_type, object_id,
                           before, after, request_id, ip)
    VALUES (
        'aud_' || lpad(to_hex(nextval('audit_log_position')), 16, '0'),
        subject->>(CASE WHEN TG_TABLE_NAME = 'merchants' THEN 'id' ELSE 'merchant_id' END),
        coalesce((subject->>'livemode')::boolean, false),
        coalesce(nullif(current_setting('paygrid.actor', true), ''), 'system'),
        TG_ARGV[0] || CASE TG_OP WHEN 'INSERT' THEN '.created'
                                 WHEN 'UPDATE' THEN '.updated'
                                 ELSE '.deleted' END,
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

OLD_AUDIT_FUNCTION = """
CREATE OR REPLACE FUNCTION paygrid_audit() RETURNS trigger LANGUAGE plpgsql AS $$
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

OLD_GUARD_FUNCTION = """
CREATE OR REPLACE FUNCTION paygrid_audit_guard() RETURNS trigger LANGUAGE plpgsql AS $$
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

DOWNGRADE = """
ALTER TABLE idempotency_keys ADD CONSTRAINT idempotency_keys_merchant_id_fkey
    FOREIGN KEY (merchant_id) REFERENCES merchants(id);
ALTER TABLE events ADD CONSTRAINT events_merchant_id_fkey
    FOREIGN KEY (merchant_id) REFERENCES merchants(id);
ALTER TABLE audit_log ADD CONSTRAINT audit_log_merchant_id_fkey
    FOREIGN KEY (merchant_id) REFERENCES merchants(id);
DROP TABLE audit_seals;
DROP FUNCTION paygrid_audit_seals_guard()
"""


def upgrade() -> None:
    execute_script(TABLES)
    # Function bodies hold ';', so not through execute_script.
    op.execute(APPEND_ONLY_FUNCTION)
    op.execute(APPEND_ONLY_TRIGGER)
    op.execute(GUARD_FUNCTION)
    op.execute(AUDIT_FUNCTION)


def downgrade() -> None:
    op.execute(OLD_AUDIT_FUNCTION)
    op.execute(OLD_GUARD_FUNCTION)
    execute_script(DOWNGRADE)
