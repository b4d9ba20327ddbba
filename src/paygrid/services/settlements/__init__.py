"""Settlements and fees (docs/settlements.md): importing providers' payouts, their
transactions and the fees of payments and refunds; listing them for the merchant."""
