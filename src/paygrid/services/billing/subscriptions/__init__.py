"""Subscriptions (docs/billing.md#subscriptions): one module per operation, and the
schedule that renews them on each customer's clock."""
