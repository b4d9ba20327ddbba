"""The thin HTTP layer: authentication, idempotency, error translation and routers."""
