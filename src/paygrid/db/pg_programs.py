"""PostgreSQL's own client programs, ``pg_dump`` and ``pg_restore``, run as subprocesses.

Backups use them rather than SQL of our own: their custom format (``-Fc``) is the one every
PostgreSQL operator knows, restores in parallel, and ``pg_dump`` reads one consistent
snapshot. A ``pg_dump`` refuses a server of a newer major version, so the programs are
picked by the server's ``server_version_num`` (docs/operations.md, "Backups"):

1. ``PAYGRID_PG_BIN_DIR`` when set (the caller passes it as ``override``);
2. the embedded server's own binaries (``pgserver/pginstall/bin`` in the environment);
3. Debian's ``/usr/lib/postgresql/<major>/bin``;
4. ``pg_dump`` on ``PATH``.

A directory whose major version equals the server's wins; otherwise the newest one that is
newer than the server (a newer ``pg_dump`` reads older servers).
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit, urlunsplit

import asyncpg

from paygrid.db.url import asyncpg_url

DEBIAN_ROOT = Path("/usr/lib/postgresql")
_VERSION = re.compile(r"\(PostgreSQL\)\s+(\d+)")


class PgProgramError(Exception):
    """A PostgreSQL client program failed."""


class PgProgramMissing(PgProgramError):
    """No pg_dump/pg_restore matching the server's major version was found."""


@dataclass(frozen=True, slots=True)
class ServerVersion:
    num: int  # server_version_num, e.g. 160002
    text: str  # server_version, e.g. "16.2"

    @property
    def major(self) -> int:
        return self.num // 10000


async def server_version(url: str) -> ServerVersion:
    conn = await asyncpg.connect(asyncpg_url(url))
    try:
        num = await conn.fetchval("SELECT current_setting('server_version_num')::int")
        text = await conn.fetchval("SELECT current_setting('server_version')")
    finally:
        await conn.close()
    return ServerVersion(int(num), str(text).split(" ", 1)[0])


def _candidates() -> list[Path]:
    found: list[Path] = []
    spec = importlib.util.find_spec("pgserver")  # finds the package without importing it
    if spec is not None and spec.origin is not None:
        found.append(Path(spec.origin).parent / "pginstall" / "bin")
    if DEBIAN_ROOT.is_dir():
        found.extend(sorted(DEBIAN_ROOT.glob("*/bin"), reverse=True))
    on_path = shutil.which("pg_dump")
    if on_path is not None:
        found.append(Path(on_path).resolve().parent)
    return [d for d in found if (d / "pg_dump").exists() and (d / "pg_restore").exists()]


def program_major(bin_dir: Path) -> int | None:
    """The major version of ``bin_dir/pg_dump`` (None if it cannot tell)."""
    try:
        # The path is one of ours (the candidates above or the operator's setting).
        out = subprocess.run(  # noqa: S603
            [str(bin_dir / "pg_dump"), "--version"], capture_output=True, text=True, check=True
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    match = _VERSION.search(out)
    return int(match.group(1)) if match else None


def bin_dir(server_major: int, override: Path | None = None) -> Path:
    """The directory of the ``pg_dump``/``pg_restore`` to use with a server of this major."""
    if override is not None:
        if not (override / "pg_dump").exists():
            raise PgProgramMissing(f"no pg_dump in PAYGRID_PG_BIN_DIR={override}")
        return override
    newer: list[tuple[int, Path]] = []
    for candidate in _candidates():
        major = program_major(candidate)
        if major == server_major:
            return candidate
        if major is not None and major > server_major:
            newer.append((major, candidate))
    if newer:
        return max(newer)[1]
    raise PgProgramMissing(
        f"no pg_dump/pg_restore of PostgreSQL {server_major} or newer found;"
        " set PAYGRID_PG_BIN_DIR to their directory"
    )


def libpq_target(url: str) -> tuple[str, dict[str, str]]:
    """The URL for ``--dbname`` without its password, and the environment that carries the
    password instead (a command line is visible to every user of the machine in ``ps``)."""
    parts = urlsplit(asyncpg_url(url))
    env = dict(os.environ)
    if parts.password is not None:
        env["PGPASSWORD"] = unquote(parts.password)
        netloc = parts.netloc.rsplit("@", 1)
        user = netloc[0].split(":", 1)[0]
        parts = parts._replace(netloc=f"{user}@{netloc[1]}")
    return urlunsplit(parts), env


async def _run(program: Path, args: list[str], url: str, options: tuple[str, ...] = ()) -> None:
    """Run ``program`` on ``url``'s database; ``options`` are server settings for its
    session (libpq's ``PGOPTIONS``)."""
    target, env = libpq_target(url)
    if options:
        env["PGOPTIONS"] = " ".join([env.get("PGOPTIONS", ""), *options]).strip()
    process = await asyncio.create_subprocess_exec(
        str(program),
        f"--dbname={target}",
        *args,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    try:
        _, stderr = await process.communicate()
    except BaseException:  # cancelled (Ctrl-C, a timeout): never leave it running on its own
        if process.returncode is None:
            process.kill()
            await process.wait()
        raise
    if process.returncode != 0:
        message = stderr.decode(errors="replace").strip()[-2000:]
        raise PgProgramError(f"{program.name} exited with {process.returncode}: {message}")


async def dump(
    url: str,
    out: Path,
    *,
    bin_dir: Path,
    snapshot: str | None = None,
    exclude_schemas: tuple[str, ...] = (),
) -> None:
    """``pg_dump -Fc`` of the database at ``url`` into ``out``, reading ``snapshot`` (an
    exported snapshot id) when given, so that what else the caller read matches the dump."""
    args = ["--format=custom", f"--file={out}", "--no-password"]
    args += [f"--exclude-schema={schema}" for schema in exclude_schemas]
    if snapshot is not None:
        args.append(f"--snapshot={snapshot}")
    await _run(bin_dir / "pg_dump", args, url)


async def restore(url: str, dump_file: Path, *, bin_dir: Path, jobs: int = 1) -> None:
    """``pg_restore`` of a custom-format dump into the (empty) database at ``url``; stops at
    the first error. Owners and privileges are not restored: the restoring role owns all,
    so a backup restores on a server whose roles differ from the original's. Commits do
    not wait for the WAL flush (a restore that a crash interrupts is started over; the
    first durable commit after it flushes everything it wrote): several times faster."""
    args = [
        "--exit-on-error",
        "--no-owner",
        "--no-privileges",
        "--no-password",
        f"--jobs={max(1, jobs)}",
        str(dump_file),
    ]
    await _run(bin_dir / "pg_restore", args, url, ("-c synchronous_commit=off",))
