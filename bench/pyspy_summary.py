"""Summarise a ``py-spy record --format raw`` profile (collapsed stacks) as hot spots.

Each line of the file is ``frame;frame;...;frame count``, outermost frame first, each frame
``function (file:line)``. Self time goes to the innermost frame; inclusive time to every
distinct function on the stack. Functions are keyed without their line numbers. Two more
views: self time by package (of the innermost frame), and time by the innermost paygrid
function on the stack (which step of paygrid's own code the time is spent under).

Usage: ``.venv/bin/python bench/pyspy_summary.py PROFILE.txt [--top 20]``
"""

from __future__ import annotations

import argparse
import re
import sys
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

FRAME = re.compile(r"^(?P<function>.*?) \((?P<file>[^()]*?)(?::\d+)?\)$")
SITE_PACKAGES = re.compile(r"^.*?/(site-packages|lib/python3\.\d+)/")


def frame_key(frame: str) -> str:
    """``"deliver (/x/site-packages/paygrid/webhooks/delivery.py:52)"`` ->
    ``"deliver (paygrid/webhooks/delivery.py)"``."""
    match = FRAME.match(frame.strip())
    if match is None:
        return frame.strip()
    path = SITE_PACKAGES.sub("", match["file"])
    path = re.sub(r"^.*?/src/paygrid/", "paygrid/", path)
    return f"{match['function']} ({path})"


@dataclass(frozen=True, slots=True)
class HotSpots:
    """Sample counts: total, and per function self and inclusive."""

    samples: int
    self_samples: list[tuple[str, int]]
    inclusive_samples: list[tuple[str, int]]
    by_package: list[tuple[str, int]]
    by_paygrid_step: list[tuple[str, int]]
    top: int = 20

    def lines(self) -> list[str]:
        """The summary as report lines."""
        if not self.samples:
            return ["  (no samples)"]
        out = [f"  {self.samples} samples of a busy thread; self time by package:"]
        out += self._percentages(self.by_package[:12])
        out.append("  time under each paygrid function (the innermost one on the stack):")
        out += self._percentages(self.by_paygrid_step[: self.top])
        out.append("  self time:")
        out += self._percentages(self.self_samples[: self.top])
        out.append("  inclusive time (paygrid, asyncpg, httpx, structlog, pydantic frames):")
        shown = 0
        for name, count in self.inclusive_samples:
            if not _interesting(name):
                continue
            out.append(f"    {100 * count / self.samples:5.1f}%  {name}")
            shown += 1
            if shown >= self.top:
                break
        return out

    def _percentages(self, rows: list[tuple[str, int]]) -> list[str]:
        return [f"    {100 * count / self.samples:5.1f}%  {name}" for name, count in rows]

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready form (for ``summary.json``)."""
        return {
            "samples": self.samples,
            "self": self.self_samples,
            "inclusive": self.inclusive_samples,
            "by_package": self.by_package,
            "by_paygrid_step": self.by_paygrid_step,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> HotSpots:
        """The inverse of ``as_dict``."""
        return cls(
            samples=int(data["samples"]),
            self_samples=[(str(n), int(c)) for n, c in data["self"]],
            inclusive_samples=[(str(n), int(c)) for n, c in data["inclusive"]],
            by_package=[(str(n), int(c)) for n, c in data["by_package"]],
            by_paygrid_step=[(str(n), int(c)) for n, c in data["by_paygrid_step"]],
        )


INTERESTING = ("paygrid/", "asyncpg/", "httpx/", "httpcore/", "structlog/", "pydantic", "orjson")


def _interesting(name: str) -> bool:
    return any(part in name for part in INTERESTING)


def package_of(key: str) -> str:
    """The top-level package of a frame key: ``"x (asyncpg/connection.py)"`` -> asyncpg;
    frozen importlib frames -> importlib."""
    path = key.rpartition(" (")[2].rstrip(")")
    if "importlib" in path:
        return "importlib (imports)"
    head = path.split("/", 1)[0]
    return head.removesuffix(".py") or "?"


def summarize_raw_profile(path: Path, keep: int = 60) -> HotSpots:
    """Hot spots of a raw py-spy profile; ``keep`` functions of each kind are kept."""
    self_counts: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    packages: Counter[str] = Counter()
    steps: Counter[str] = Counter()
    total = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [frame_key(frame) for frame in stack.split(";") if frame.strip()]
        if not frames:
            continue
        total += count
        self_counts[frames[-1]] += count
        packages[package_of(frames[-1])] += count
        own = [name for name in frames if "(paygrid/" in name and "(paygrid/cli.py)" not in name]
        steps[own[-1] if own else "(no paygrid frame: the event loop, library callbacks)"] += count
        for name in set(frames):
            inclusive[name] += count
    return HotSpots(
        samples=total,
        self_samples=self_counts.most_common(keep),
        inclusive_samples=inclusive.most_common(keep * 3),
        by_package=packages.most_common(),
        by_paygrid_step=steps.most_common(keep),
    )


def main(argv: list[str] | None = None) -> int:
    """Print the hot spots of one profile."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("profile", type=Path)
    parser.add_argument("--top", type=int, default=20)
    args = parser.parse_args(argv)
    spots = summarize_raw_profile(args.profile)
    spots = replace(spots, top=args.top)
    print("\n".join(spots.lines()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
