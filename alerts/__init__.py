"""The alert and recording rules, and their generator."""
