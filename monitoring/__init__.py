"""The monitoring that ships with the exporter: its one configuration (config.py)."""
