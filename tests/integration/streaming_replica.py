"""A throwaway primary and its streaming replica, made the way docs/deploy.md tells an operator
to: ``initdb`` a primary with ``wal_level = replica`` and a replication entry in pg_hba,
``pg_basebackup -R`` into another directory, start that as a hot standby.

The binaries are pgserver's own (PostgreSQL 16, inside the virtual environment): the ones the
embedded server runs, present wherever paygrid's development dependencies are installed,
in CI too, whereas /usr/lib/postgresql/15 is only on machines that installed Debian's
server. Both servers listen only on a Unix socket in their own data directory (no TCP port
to find free or to collide with). PostgreSQL refuses to run as root: when the tests run as
root, the servers run as pgserver's system user, as the embedded server does.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pgserver

from paygrid.db.embedded import socket_url

BIN = Path(pgserver.__file__).parent / "pginstall" / "bin"
SYSTEM_USER = "pgserver"  # pgserver's own, for root
PORT = 5432  # the socket's name only: each server's socket lives in its own directory


def _system_user() -> str | None:
    if os.geteuid() != 0:
        return None
    import stat

    from pgserver import utils

    utils.ensure_user_exists(SYSTEM_USER)
    utils.ensure_prefix_permissions(BIN)
    utils.ensure_folder_permissions(BIN, stat.S_IRGRP | stat.S_IROTH | stat.S_IXGRP | stat.S_IXOTH)
    utils.ensure_folder_permissions(BIN.parent / "lib", stat.S_IRGRP | stat.S_IROTH)
    return SYSTEM_USER


@dataclass(frozen=True, slots=True)
class Server:
    data: Path
    sockets: Path  # outside the data directory, which pg_basebackup copies
    user: str | None

    @property
    def log(self) -> Path:
        return self.sockets / "log"

    def url(self, database: str) -> str:
        return socket_url(str(self.sockets), database)

    def pg(self, program: str, *args: str) -> None:
        """Run one of the binaries; output goes to a file (a pipe would be held open by the
        postmaster ``pg_ctl start`` leaves running)."""
        with tempfile.TemporaryFile() as output:
            done = subprocess.run(
                [str(BIN / program), *args],
                user=self.user,
                stdout=output,
                stderr=subprocess.STDOUT,
                timeout=60,
                check=False,
            )
            if done.returncode != 0:
                output.seek(0)
                raise RuntimeError(f"{program} {args}: {output.read().decode(errors='replace')}")

    def start(self) -> None:
        try:
            self.pg("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "start")
        except RuntimeError as error:
            log = self.log.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"{error}\n{log}") from None

    def stop(self, mode: str = "fast") -> None:
        self.pg("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")

    def running(self) -> bool:
        return (self.data / "postmaster.pid").exists()

    def configure(self, lines: list[str]) -> None:
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write("\n".join(lines) + "\n")


@dataclass(frozen=True, slots=True)
class ReplicatedCluster:
    primary: Server
    replica: Server


@contextmanager
def replicated_cluster() -> Iterator[ReplicatedCluster]:
    """A running primary and its hot standby; both stopped and deleted afterwards."""
    user = _system_user()
    root = Path(tempfile.mkdtemp(prefix="paygrid-repl-", dir="/tmp"))  # short socket paths
    if user is not None:
        shutil.chown(root, user)
    primary = Server(root / "primary", root / "primary-socket", user)
    replica = Server(root / "replica", root / "replica-socket", user)
    for server in (primary, replica):
        server.sockets.mkdir()
        if user is not None:
            shutil.chown(server.sockets, user)
    try:
        primary.pg("initdb", "-D", str(primary.data), "-U", "postgres", "--auth=trust",
                   "--encoding=UTF8", "--no-sync")  # fmt: skip
        primary.configure([
            "listen_addresses = ''",
            f"unix_socket_directories = '{primary.sockets}'",
            f"port = {PORT}",
            "wal_level = replica",
            "max_wal_senders = 4",
            "fsync = off",  # a throwaway server: nothing to keep through a crash
        ])  # fmt: skip
        with (primary.data / "pg_hba.conf").open("a") as hba:
            hba.write("local replication postgres trust\n")
        primary.start()
        # -R writes standby.signal and primary_conninfo: the copy starts as a standby.
        replica.pg("pg_basebackup", "-h", str(primary.sockets), "-p", str(PORT), "-U", "postgres",
                   "-D", str(replica.data), "-R", "-X", "stream", "-c", "fast", "--no-sync")  # fmt: skip
        replica.configure([f"unix_socket_directories = '{replica.sockets}'", "hot_standby = on"])
        replica.start()
        yield ReplicatedCluster(primary, replica)
    finally:
        for server in (replica, primary):
            if server.running():
                # Already stopping: the directory goes anyway.
                with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
                    server.stop("immediate")
        shutil.rmtree(root, ignore_errors=True)
