"""Grafana dashboards and provisioning for the otel-agents backend (see dashboards/README.md)."""
