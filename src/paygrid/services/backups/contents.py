"""What a backup says a database holds: per-table row counts and content checksums and the
audit chain heads, read the same way when the backup is taken and when it is verified."""

from __future__ import annotations

from paygrid.db import backups as backups_db
from paygrid.db.executor import Executor
from paygrid.services.backups.archive import AuditHead, TableSummary


async def tables(conn: Executor) -> tuple[TableSummary, ...]:
    """Call inside ``backups_db.snapshot`` or ``backups_db.consistent_read``."""
    counts = await backups_db.table_counts(conn)
    return tuple(TableSummary(c.name, c.rows, c.checksum) for c in counts)


async def audit_heads(conn: Executor) -> tuple[AuditHead, ...]:
    heads = await backups_db.chain_heads(conn)
    return tuple(
        AuditHead(h.merchant_id, h.seq, h.last_id, h.hash.hex(), h.unsealed) for h in heads
    )
