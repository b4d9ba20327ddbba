"""Backups: the archive format, create, verify, list, and the catalog (issue 16 §5)."""
