"""Snapshots to the Prometheus exposition: collectors, the text writer, the renderer."""
