"""Grafana dashboards, generated (generate_dashboards.py) and checked in as JSON."""
