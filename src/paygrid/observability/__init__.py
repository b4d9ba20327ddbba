"""Prometheus metrics (``/metrics``) and OpenTelemetry traces."""
