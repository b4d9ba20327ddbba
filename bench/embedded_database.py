"""The benchmarks' data directories and the embedded PostgreSQL server in them.

A bench data directory (``.paygrid/bench``, ``.paygrid/bench-webhooks``, ...) holds what
paygrid puts in a data directory: the embedded server's ``pg``, the processes' ``logs``,
``demo.json`` and ``encryption.key``. The benchmarks delete it only when it holds nothing
else and its server is not running.
"""

from __future__ import annotations

import contextlib
import shutil
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path

import psutil

from paygrid.db.embedded import EmbeddedPostgres

DATA_DIR_CONTENTS = frozenset({"pg", "logs", "demo.json", "demo_dashboard.json", "encryption.key"})


@contextlib.contextmanager
def embedded_database(data_dir: Path) -> Iterator[str]:
    """Hold a handle on the embedded server for the whole run, so it keeps running while the
    benchmark's servers come and go; yields its asyncpg URL."""
    data_dir.mkdir(parents=True, exist_ok=True)
    embedded = EmbeddedPostgres(data_dir)
    with warnings.catch_warnings():
        # pgserver's platformdirs use warns when XDG_RUNTIME_DIR is unset; harmless.
        warnings.simplefilter("ignore", UserWarning)
        url = embedded.start()
    try:
        yield url
    finally:
        embedded.release()


def postmaster_pid(data_dir: Path) -> int:
    """The embedded server's pid: the first line of ``postmaster.pid``."""
    return int((data_dir / "pg" / "postmaster.pid").read_text().split()[0])


def delete_data_dir(data_dir: Path, *, prefix: str = "", advice: str = "") -> None:
    """Remove a bench data directory, unless its database server is running or it holds
    anything a bench run would not have put there (then exit, the message starting with
    ``prefix``; ``advice`` follows the refusal to delete unexpected files)."""
    if not data_dir.exists():
        return
    unexpected = {p.name for p in data_dir.iterdir()} - DATA_DIR_CONTENTS
    if unexpected:
        sys.exit(f"{prefix}{data_dir} holds {sorted(unexpected)}; not deleting it{advice}")
    if (data_dir / "pg" / "postmaster.pid").exists() and psutil.pid_exists(
        postmaster_pid(data_dir)
    ):
        sys.exit(f"{prefix}a database server is running in {data_dir / 'pg'}; stop it first")
    shutil.rmtree(data_dir)
