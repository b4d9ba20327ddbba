"""Reconciliation runs (issue 15 §2): docs/reconciliation.md."""
