"""The embedded default database: a real PostgreSQL 16 started by ``pgserver``.

Several processes that point at the same data directory share one server, so a CLI command
run beside ``make run`` sees the same data.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psutil
import structlog

DATABASE_NAME = "paygrid"
HANDLES_FILE = ".handle_pids.json"  # pgserver's list of processes using the server
log = structlog.get_logger("paygrid.db")


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

    def postmaster_pid(self) -> int | None:
        """The server's process id from ``postmaster.pid``, or ``None`` if it has none."""
        pid_file = self.data_dir / "postmaster.pid"
        try:
            return int(pid_file.read_text().split("\n", 1)[0])
        except (FileNotFoundError, ValueError):
            return None

    def running(self) -> bool:
        pid = self.postmaster_pid()
        if pid is None:
            return False
        try:
            status = str(psutil.Process(pid).status())
        except psutil.NoSuchProcess:
            return False
        return status != str(psutil.STATUS_ZOMBIE)

    def ensure_running(self) -> bool:
        """Start the server again if it died (kill -9, the OOM killer); ``True`` if this call
        started it. Raises ``subprocess.SubprocessError`` when it cannot start yet (the dead
        server's backends still hold its shared memory): call again a moment later."""
        from pgserver.postgres_server import PostgresServer

        if self._server is None or self.running():
            return False
        # pgserver's inter-process lock: two supervisors (two paygrid processes) start it once.
        with PostgresServer._lock:
            if self.running():
                return False
            # Also restores the directory permissions the server's system user needs (when
            # paygrid runs as root), which may have changed since it first started.
            self._server.ensure_pgdata_inited()
            self._server.ensure_postgres_running()
        return True

    def supervise(self, every_seconds: float = 1.0) -> Supervisor:
        """Check every ``every_seconds`` that the server runs, restarting it if it died, until
        the returned supervisor is stopped."""
        supervisor = Supervisor(self, every_seconds)
        supervisor.start()
        return supervisor

    def release(self) -> None:
        """Drop this process's handle; the server stops when the last handle is dropped."""
        self._forget_dead_handles()
        if self._server is not None:
            self._server.cleanup()
            self._server = None


class Supervisor:
    """A daemon thread that keeps the embedded server running for ``paygrid serve``: the
    app's pools reconnect by themselves once it is back, so no restart of paygrid is needed."""

    def __init__(self, embedded: EmbeddedPostgres, every_seconds: float) -> None:
        self._embedded = embedded
        self._every = every_seconds
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="embedded-postgres", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stop watching (before the server is released, so it is not started again)."""
        self._stopped.set()
        self._thread.join()

    def _run(self) -> None:
        failing = False
        while not self._stopped.wait(self._every):
            try:
                if self._embedded.ensure_running():
                    log.warning("embedded_postgres.restarted", pid=self._embedded.postmaster_pid())
                failing = False
            except Exception as error:  # try again next time; say so once per failure spell
                if not failing:
                    log.warning("embedded_postgres.restart_failed", error=type(error).__name__)
                failing = True


def socket_url(socket_dir: str, database: str) -> str:
    return f"postgresql://postgres@/{database}?host={quote(socket_dir, safe='/')}"
