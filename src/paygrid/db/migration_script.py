"""Run a multi-statement SQL script from an Alembic migration."""

from __future__ import annotations

from alembic import op


def execute_script(script: str) -> None:
    """Run each ``;``-separated statement on its own: asyncpg prepares every statement, and
    a prepared statement holds exactly one command. Scripts must not put ``;`` inside
    comments, strings or function bodies (run those with ``op.execute`` directly)."""
    for statement in script.split(";"):
        if statement.strip():
            op.execute(statement)
