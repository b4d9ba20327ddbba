"""A narrow outbox for events, and audit rows kept uncompressed (issue 12 §2, cost).

- **``event_outbox``**: one row (the event's id) per event not yet dispatched, written by
  the trigger that already wakes the dispatchers, in the statement that inserts the event.
  Dispatching deletes it. Before, dispatching updated the event row itself
  (``dispatched_at``): a copy of the whole row, snapshot included (about 1.3 kB of WAL),
  and new entries in each of its indexes, since the column was in the partial index's
  predicate and so no update of it could be HOT: 30 to 40 µs of PostgreSQL per event, two
  events per payment; the outbox's insert and delete cost 10 to 15 µs. ``dispatched_at`` and
  its index go: an event is dispatched when no outbox row names it. An event written
  already dispatched (a test ping) has its outbox row deleted in the same transaction.
- **``audit_log`` rows up to 8160 bytes stay inline uncompressed**
  (``toast_tuple_target``). A payment's update carries its row twice (before and after),
  about 2 kB, just over the default 2032-byte target: PostgreSQL compressed it on every
  write (pglz), about 30 µs per update. Rows are written once and read rarely; they take
  about 10 % more room.

Revision ID: 0032_event_outbox
Revises: 0031_fence_drain
Create Date: 2026-12-07
"""

from __future__ import annotations

from alembic import op

from paygrid.db.migration_script import execute_script

revision = "0032_event_outbox"
down_revision = "0031_fence_drain"
branch_labels = None
depends_on = None

UPGRADE = """
CREATE TABLE event_outbox (event_id text PRIMARY KEY);
INSERT INTO event_outbox (event_id) SELECT id FROM events WHERE dispatched_at IS NULL;
DROP INDEX events_undispatched;
ALTER TABLE events DROP COLUMN dispatched_at;
DROP TRIGGER events_notify ON events;
ALTER TABLE audit_log SET (toast_tuple_target = 8160)
"""

# Every inserted event enters the outbox, and dispatchers are woken when it commits
# (NOTIFY is delivered at commit, once per transaction). Apart: the body has semicolons.
OUTBOX_FUNCTION = """
CREATE OR REPLACE FUNCTION paygrid_notify_events() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO event_outbox (event_id) SELECT id FROM inserted_events;
    PERFORM pg_notify('paygrid_events', '');
    RETURN NULL;
END
$$
"""
OUTBOX_TRIGGER = """
CREATE TRIGGER events_notify AFTER INSERT ON events REFERENCING NEW TABLE AS inserted_events
    FOR EACH STATEMENT EXECUTE FUNCTION paygrid_notify_events()
"""

NOTIFY_FUNCTION = """
CREATE OR REPLACE FUNCTION paygrid_notify_events() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('paygrid_events', '');
    RETURN NULL;
END
$$
"""

DOWNGRADE = """
DROP TRIGGER events_notify ON events;
ALTER TABLE events ADD COLUMN dispatched_at timestamptz;
UPDATE events SET dispatched_at = created_at
    WHERE NOT EXISTS (SELECT 1 FROM event_outbox o WHERE o.event_id = events.id);
CREATE INDEX events_undispatched ON events (id) WHERE dispatched_at IS NULL;
DROP TABLE event_outbox;
CREATE TRIGGER events_notify AFTER INSERT ON events
    FOR EACH STATEMENT EXECUTE FUNCTION paygrid_notify_events();
ALTER TABLE audit_log RESET (toast_tuple_target)
"""


def upgrade() -> None:
    execute_script(UPGRADE)
    op.execute(OUTBOX_FUNCTION)
    op.execute(OUTBOX_TRIGGER)


def downgrade() -> None:
    op.execute(NOTIFY_FUNCTION)
    execute_script(DOWNGRADE)
