"""Browser-facing pages: the simulator's hosted authentication page and provider returns."""
