"""Outbound webhooks: signing (Standard Webhooks), the SSRF guard, delivery and retries."""
