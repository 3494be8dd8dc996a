"""The exporter's own listener: routes, auth, the server thread, the status page."""
