"""Type aliases for what runs SQL: a connection (plain or pooled) or the pool itself."""

from __future__ import annotations

from typing import TypeAlias

import asyncpg
from asyncpg.pool import PoolConnectionProxy

Connection: TypeAlias = asyncpg.Connection | PoolConnectionProxy
Executor: TypeAlias = asyncpg.Pool | asyncpg.Connection | PoolConnectionProxy
