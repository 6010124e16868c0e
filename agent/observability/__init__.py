"""Observability: OpenTelemetry tracing and Prometheus metrics (core layer)."""
