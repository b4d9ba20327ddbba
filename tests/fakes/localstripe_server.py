"""Run localstripe (GPL-3.0, a test-only dependency in its own process) on 127.0.0.1 with no
state file: ``python -m tests.fakes.localstripe_server --port N``.

Its own CLI binds every interface and pickles its store to a fixed path in the temp
directory after each write, which would leak state between runs and parallel sessions."""

from __future__ import annotations

import argparse

import localstripe.resources  # type: ignore[import-untyped]  # GPL test tool, no types
import localstripe.server  # type: ignore[import-untyped]
from aiohttp import web


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    localstripe.resources.Store.dump_to_disk = lambda self: None
    web.run_app(localstripe.server.app, host="127.0.0.1", port=args.port, print=None)


if __name__ == "__main__":
    main()
