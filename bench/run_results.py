"""Where a benchmark run's results go, and what identifies them.

Each run gets its own directory under ``bench/results/`` (gitignored), named after the UTC
time it started; the benchmark writes its raw numbers there, and at the end the printed
report as ``report.txt`` and every number as ``summary.json``, which starts with the code
version under test and the configuration of the run.
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from processes import BENCH_DIR, REPO_ROOT

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

RESULTS_DIR = BENCH_DIR / "results"


def code_version() -> str:
    """The commit under test, marked dirty when ``src/`` has uncommitted changes."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],  # noqa: S607 - git from PATH
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        changes = subprocess.run(
            ["git", "status", "--porcelain", "--", "src"],  # noqa: S607 - git from PATH
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{commit}{' + uncommitted changes in src/' if changes else ''}"


def new_results_dir(label: str) -> Path:
    """Create ``bench/results/<UTC start time>-<label>`` for this run."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    results_dir = RESULTS_DIR / f"{stamp}-{label}"
    results_dir.mkdir(parents=True, exist_ok=True)
    return results_dir


def summary_header(version: str, config: DataclassInstance) -> dict[str, Any]:
    """The start of ``summary.json``: the code version and the run's configuration (a
    dataclass with a ``data_dir`` path), with this machine's CPU count."""
    settings = asdict(config)
    return {
        "version": version,
        "config": {**settings, "data_dir": str(settings["data_dir"]), "cpus": os.cpu_count()},
    }


def publish(results_dir: Path, report: str, summary: dict[str, Any], saved: str) -> None:
    """Print the report, save it as ``report.txt`` and ``summary`` as ``summary.json``, and
    say where ``saved`` (a description of what the directory holds) is."""
    print()
    print(report)
    (results_dir / "report.txt").write_text(report + "\n")
    (results_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(f"\n{saved}: {results_dir.relative_to(REPO_ROOT)}")


def target_line(name: str, value: str, goal: str, met: bool, width: int) -> str:
    """One line of a report's targets list; ``width`` aligns the names."""
    return f"  {name:<{width}} {value:>10}  (target {goal}): {'met' if met else 'MISSED'}"
