"""Emails to customers (issue 14 §5): decided from outbox events and card expiry dates,
recorded once in the send log, rendered from Jinja templates and sent over SMTP by the
worker. See docs/billing.md#emails."""
