"""The benchmarks' child processes, and the CPU they and the machine use.

A child process starts in its own session with its output in ``<log dir>/<name>.log`` and
stops on a signal (its whole process group is killed if it hangs); a server child also has a
port and waits for ``GET /readyz``. CPU is counted per process tree (live processes and the
children they reaped), and for the whole machine from ``psutil.cpu_times()`` readings.

Shared by ``bench/payments.py``, ``bench/webhooks.py`` and ``bench/roundtrips.py``, which
import it as a top-level module: running ``python bench/<script>.py`` puts ``bench/`` first
on ``sys.path``.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import psutil

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
VENV_BIN = Path(sys.executable).parent
READY_TIMEOUT_SECONDS = 120.0
STOP_TIMEOUT_SECONDS = 30.0

BUSY_FIELDS = ("user", "nice", "system", "irq", "softirq", "steal")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def clean_environment() -> dict[str, str]:
    """The inherited environment without PAYGRID_* and BENCH_* settings, so the run is
    reproducible and always uses the embedded database."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("PAYGRID_", "BENCH_"))}


class ChildProcess:
    """A process started in its own session with its output in a log file; stopped with
    SIGTERM (graceful for ``paygrid worker`` and the webhook receiver), killed if it hangs."""

    stop_signal = signal.SIGTERM

    def __init__(self, name: str, command: list[str], env: dict[str, str], log_dir: Path) -> None:
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        log_dir.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(  # noqa: S603 - our own argv, no shell
                command,
                cwd=REPO_ROOT,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    @property
    def pid(self) -> int:
        """The process id of the started command."""
        return self.process.pid

    def check_alive(self) -> None:
        """Raise if the process has exited."""
        if self.process.poll() is not None:
            raise RuntimeError(
                f"{self.name} exited with {self.process.returncode}; see {self.log_path}"
            )

    def cpu_seconds(self) -> float:
        """User + system CPU of the process and its children (uvicorn workers, for one)."""
        return process_tree_cpu(self.pid)

    def stop(self, timeout: float = STOP_TIMEOUT_SECONDS) -> int | None:
        """Send ``stop_signal``, wait, SIGKILL the group if needed; returns the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(self.stop_signal)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        return self.process.returncode


class ServerProcess(ChildProcess):
    """An HTTP server on 127.0.0.1 as a child process, stopped with SIGINT (like Ctrl-C)."""

    stop_signal = signal.SIGINT

    def __init__(
        self, name: str, command: list[str], env: dict[str, str], port: int, log_dir: Path
    ) -> None:
        self.port = port
        super().__init__(name, command, env, log_dir)

    @property
    def base_url(self) -> str:
        """Where the server listens."""
        return f"http://127.0.0.1:{self.port}"

    def wait_ready(self, timeout: float = READY_TIMEOUT_SECONDS) -> None:
        """Poll ``GET /readyz`` until it answers 200."""
        if not wait_for_http(self, f"{self.base_url}/readyz", timeout, interval=0.25):
            raise RuntimeError(
                f"{self.name} was not ready after {timeout:.0f} s; see {self.log_path}"
            )


def wait_for_http(child: ChildProcess, url: str, timeout: float, interval: float) -> bool:
    """Poll ``GET url`` every ``interval`` seconds until it answers 200 (True) or
    ``timeout`` seconds have passed (False); raise if ``child`` exits meanwhile."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        child.check_alive()
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=2).status_code == 200:
                return True
        time.sleep(interval)
    return False


def process_tree(pid: int) -> list[psutil.Process]:
    """The process ``pid`` and its live descendants; empty when it has exited."""
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def tree_pids(pid: int) -> set[int]:
    """The pid and the pids of its live descendants."""
    return {process.pid for process in process_tree(pid)}


def process_tree_cpu(pid: int) -> float:
    """CPU seconds used so far by ``pid`` and its descendants: the live ones, and those that
    exited and were reaped (PostgreSQL's autovacuum workers, for instance)."""
    total = 0.0
    for process in process_tree(pid):
        with contextlib.suppress(psutil.NoSuchProcess):
            times = process.cpu_times()
            total += times.user + times.system + times.children_user + times.children_system
    return total


def busy_seconds(before: Any, after: Any) -> float:
    """CPU-seconds all CPUs spent busy between two ``psutil.cpu_times()`` readings."""
    return sum(getattr(after, f, 0.0) - getattr(before, f, 0.0) for f in BUSY_FIELDS)


def busy_percent(before: Any, after: Any) -> float:
    """How busy all CPUs were between two ``psutil.cpu_times()`` readings, in percent."""
    busy = busy_seconds(before, after)
    idle = (after.idle + after.iowait) - (before.idle + before.iowait)
    return 100 * busy / (busy + idle) if busy + idle else 0.0


def warn_if_busy(seconds: float = 2.0) -> None:
    """Other work on the machine skews the numbers; say so before starting."""
    before = psutil.cpu_times()
    time.sleep(seconds)
    busy = busy_percent(before, psutil.cpu_times())
    if busy > 20:
        print(f"warning: the machine was {busy:.0f}% busy before the run; results will be noisy")
