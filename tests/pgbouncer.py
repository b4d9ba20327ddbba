"""A PgBouncer (Debian's ``pgbouncer``, 1.18) in transaction pooling mode in front of the test
PostgreSQL: a TCP server, or the embedded pgserver's Unix socket. Used by
tests/integration/test_pgbouncer.py, and by ``python -m tests.pgbouncer`` which runs test
modules a second time through it (``.ci/run``).

PgBouncer logs its own state; nothing here reimplements a pooler."""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from tempfile import TemporaryDirectory
from urllib.parse import parse_qs, urlsplit

PGBOUNCER = os.environ.get("PAYGRID_TEST_PGBOUNCER") or shutil.which(
    "pgbouncer", path="/usr/sbin:/usr/bin:" + os.environ.get("PATH", "")
)
# Server connections per database and user: small, so that pooling is visible (more client
# connections than server connections) and waits, not failures, absorb the bursts.
POOL_SIZE = 6
ROOT = Path(__file__).resolve().parent.parent
SOLO = "solo"
"""A database entry with one server connection (``pool_size=1``), for the proofs that need
two clients to share one server connection deterministically."""


@dataclass(frozen=True)
class Bouncer:
    port: int
    log: Path
    process: subprocess.Popen[bytes]

    def url(self, database: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def server_address(url: str) -> tuple[str, int]:
    """(host or socket directory, port) of a PostgreSQL URL."""
    parts = urlsplit(url)
    socket_dir = parse_qs(parts.query).get("host", [None])[0]
    if socket_dir:
        sockets = sorted(Path(socket_dir).glob(".s.PGSQL.*[0-9]"))
        return socket_dir, int(sockets[0].suffix[1:]) if sockets else 5432
    return parts.hostname or "127.0.0.1", parts.port or 5432


def config(
    server_url: str, port: int, directory: Path, pool_size: int, user: str | None = None
) -> str:
    host, server_port = server_address(server_url)
    target = f"host={host} port={server_port}"
    return "\n".join(
        [
            "[databases]",
            f"{SOLO} = {target} dbname=postgres pool_size=1",
            # Any other database name goes to the same server under its own name.
            f"* = {target}",
            "[pgbouncer]",
            "listen_addr = 127.0.0.1",
            f"listen_port = {port}",
            "unix_socket_dir =",
            "auth_type = trust",
            f"auth_file = {directory / 'userlist.txt'}",
            "admin_users = postgres",
            "pool_mode = transaction",
            "max_client_conn = 500",
            f"default_pool_size = {pool_size}",
            "reserve_pool_size = 0",
            f"logfile = {directory / 'pgbouncer.log'}",
            f"pidfile = {directory / 'pgbouncer.pid'}",
            *([] if user is None else [f"user = {user}"]),
            "",
        ]
    )


def _unprivileged_user(server_url: str, directory: Path) -> str | None:
    """PgBouncer refuses to run as root: started as root (CI), it switches to the user who
    owns the embedded server's socket directory (pgserver's own), or ``nobody`` for TCP, and
    that user gets ``directory`` for its log and pid files."""
    if os.geteuid() != 0:
        return None
    host, _ = server_address(server_url)
    owner = os.stat(host).st_uid if host.startswith("/") else pwd.getpwnam("nobody").pw_uid
    os.chown(directory, owner, -1)
    return pwd.getpwuid(owner).pw_name


@contextmanager
def pgbouncer(server_url: str, pool_size: int = POOL_SIZE) -> Iterator[Bouncer]:
    """PgBouncer on a free loopback port in front of ``server_url``'s server, until exit. Its
    files live in a directory of its own under the system's temporary directory, where the
    unprivileged user it may switch to can reach them (pytest's ``tmp_path`` is root's only)."""
    assert PGBOUNCER is not None, "pgbouncer is not installed (apt-get install pgbouncer)"
    with TemporaryDirectory(prefix="paygrid-pgbouncer-") as tmp:
        directory = Path(tmp)
        port = _free_port()
        (directory / "userlist.txt").write_text('"postgres" ""\n')
        ini = directory / "pgbouncer.ini"
        user = _unprivileged_user(server_url, directory)
        ini.write_text(config(server_url, port, directory, pool_size, user))
        log = directory / "pgbouncer.log"
        with (directory / "stderr.log").open("wb") as stderr:
            process = subprocess.Popen([PGBOUNCER, str(ini)], stdout=stderr, stderr=stderr)
        try:
            _wait_listening(port, process, directory)
            yield Bouncer(port, log, process)
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _wait_listening(port: int, process: subprocess.Popen[bytes], directory: Path) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if process.poll() is not None:
            logs = [directory / "stderr.log", directory / "pgbouncer.log"]
            said = "".join(log.read_text() for log in logs if log.exists())
            raise RuntimeError(f"pgbouncer exited:\n{said}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        except OSError:
            time.sleep(0.05)
        else:
            return
    raise RuntimeError("pgbouncer did not start listening within 10 s")


def main(arguments: list[str]) -> int:
    """Run pytest on ``arguments`` through a PgBouncer: the tests' database is created and
    migrated directly (PAYGRID_TEST_DATABASE_DIRECT_URL), their pools go through PgBouncer
    with ``PAYGRID_DATABASE_POOLER=transaction``'s settings."""
    configured = os.environ.get("PAYGRID_TEST_DATABASE_URL")
    embedded = None
    if configured:
        direct = configured
    else:
        from paygrid.db.embedded import EmbeddedPostgres

        embedded = EmbeddedPostgres(ROOT / ".paygrid" / "test")
        direct = embedded.start("postgres")
    try:
        with pgbouncer(direct) as bouncer:
            env = {
                **os.environ,
                "PAYGRID_TEST_DATABASE_URL": bouncer.url("postgres"),
                "PAYGRID_TEST_DATABASE_DIRECT_URL": direct,
            }
            command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *arguments]
            return subprocess.call(command, env=env, cwd=ROOT)
    finally:
        if embedded is not None:
            embedded.release()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
