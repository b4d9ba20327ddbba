"""Background jobs: the ``jobs`` queue every background task runs through, and the
``workers`` that claim them and record their heartbeats.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

from __future__ import annotations

from paygrid.db.migration_script import execute_script

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

# A job's live statuses: at most one live job per unique_key, and only these are claimed.
LIVE = "'queued', 'failed', 'running'"

UPGRADE = f"""
CREATE TABLE jobs (
    id               text PRIMARY KEY,
    queue            text NOT NULL CHECK (length(queue) BETWEEN 1 AND 100),
    kind             text NOT NULL CHECK (length(kind) BETWEEN 1 AND 200),
    payload          jsonb NOT NULL DEFAULT '{{}}',
    status           text NOT NULL DEFAULT 'queued'
                     CHECK (status IN ('queued', 'failed', 'running', 'succeeded', 'dead')),
    attempts         integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    unique_key       text,
    repeat_every     interval CHECK (repeat_every > interval '0'),
    run_at           timestamptz NOT NULL DEFAULT now(),
    locked_by        text,
    lease_expires_at timestamptz,
    last_error       text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    CHECK ((status = 'running') = (locked_by IS NOT NULL)),
    CHECK ((status = 'running') = (lease_expires_at IS NOT NULL))
);
-- What a worker claims: jobs that are due, and running jobs whose lease ran out.
CREATE INDEX jobs_due ON jobs (queue, run_at) WHERE status IN ('queued', 'failed');
CREATE INDEX jobs_leases ON jobs (queue, lease_expires_at) WHERE status = 'running';
CREATE UNIQUE INDEX jobs_unique_live ON jobs (unique_key)
    WHERE unique_key IS NOT NULL AND status IN ({LIVE});
CREATE INDEX jobs_succeeded ON jobs (updated_at) WHERE status = 'succeeded';

CREATE TABLE workers (
    id           text PRIMARY KEY,
    hostname     text NOT NULL,
    pid          integer NOT NULL,
    queues       text[] NOT NULL,
    concurrency  integer NOT NULL CHECK (concurrency > 0),
    started_at   timestamptz NOT NULL DEFAULT now(),
    heartbeat_at timestamptz NOT NULL DEFAULT now(),
    stopped_at   timestamptz
);
CREATE INDEX workers_live ON workers (heartbeat_at) WHERE stopped_at IS NULL;
"""

DOWNGRADE = """
DROP TABLE workers, jobs;
"""


def upgrade() -> None:
    execute_script(UPGRADE)


def downgrade() -> None:
    execute_script(DOWNGRADE)
