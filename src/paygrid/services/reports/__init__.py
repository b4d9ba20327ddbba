"""Reports (docs/reports.md): the payments summary, read synchronously or by a report run."""
