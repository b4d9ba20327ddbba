"""The embedded default database: a real PostgreSQL 16 started by ``pgserver``.

Several processes that point at the same data directory share one server, so a CLI command
run beside ``make run`` sees the same data.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote

DATABASE_NAME = "paygrid"


class EmbeddedPostgres:
    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir.resolve() / "pg"
        self._server: Any = None

    def start(self, database: str = DATABASE_NAME) -> str:
        """Start (or join) the server and return an asyncpg URL for ``database``."""
        from pgserver import postgres_server  # only needed when no URL is configured

        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._server = postgres_server.get_server(self.data_dir, cleanup_mode="stop")
        query = f"SELECT 1 FROM pg_database WHERE datname = '{database}';"  # noqa: S608 - our own name
        exists = self._server.psql(query)
        if "(1 row)" not in exists:
            self._server.psql(f'CREATE DATABASE "{database}";')
        return socket_url(self.socket_dir(), database)

    def socket_dir(self) -> str:
        uri: str = self._server.get_uri()
        return uri.split("host=", 1)[1].split("&", 1)[0]

    def release(self) -> None:
        """Drop this process's handle; the server stops when the last handle is dropped."""
        if self._server is not None:
            self._server.cleanup()
            self._server = None


def socket_url(socket_dir: str, database: str) -> str:
    return f"postgresql://postgres@/{database}?host={quote(socket_dir, safe='/')}"
