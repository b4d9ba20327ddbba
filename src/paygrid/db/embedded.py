"""The embedded default database: a real PostgreSQL 16 started by ``pgserver``.

Several processes that point at the same data directory share one server, so a CLI command
run beside ``make run`` sees the same data.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psutil

DATABASE_NAME = "paygrid"
HANDLES_FILE = ".handle_pids.json"  # pgserver's list of processes using the server


class EmbeddedPostgres:
    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir.resolve() / "pg"
        self._server: Any = None

    def start(self, database: str = DATABASE_NAME) -> str:
        """Start (or join) the server and return an asyncpg URL for ``database``."""
        from pgserver import postgres_server  # only needed when no URL is configured

        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._forget_dead_handles()
        self._server = postgres_server.get_server(self.data_dir, cleanup_mode="stop")
        query = f"SELECT 1 FROM pg_database WHERE datname = '{database}';"
        exists = self._server.psql(query)
        if "(1 row)" not in exists:
            self._server.psql(f'CREATE DATABASE "{database}";')
        return socket_url(self.socket_dir(), database)

    def socket_dir(self) -> str:
        uri: str = self._server.get_uri()
        return uri.split("host=", 1)[1].split("&", 1)[0]

    def _forget_dead_handles(self) -> None:
        """pgserver counts users in ``.handle_pids.json`` but never drops a process that died
        without cleaning up (SIGKILL, power loss), which would keep the server running
        forever. Drop such pids so the last live user stops it."""
        from pgserver.postgres_server import PostgresServer

        handles = self.data_dir / HANDLES_FILE
        # pgserver's own inter-process lock guards this file: processes starting together
        # must not read it half-written.
        with PostgresServer._lock:
            if not handles.exists():
                return
            pids = [pid for pid in json.loads(handles.read_text()) if psutil.pid_exists(pid)]
            handles.write_text(json.dumps(pids))

    def release(self) -> None:
        """Drop this process's handle; the server stops when the last handle is dropped."""
        self._forget_dead_handles()
        if self._server is not None:
            self._server.cleanup()
            self._server = None


def socket_url(socket_dir: str, database: str) -> str:
    return f"postgresql://postgres@/{database}?host={quote(socket_dir, safe='/')}"
