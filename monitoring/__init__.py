"""The monitoring that ships with the exporter, from one source: its configuration (config.py, the
mixin's _config), the PromQL the rules and dashboards share (promql.py), the rules (rules.py), the
dashboards (dashboards/), the mixin (mixin.py) and what the Helm chart takes (chart.py).
`python -m monitoring generate|check` writes or verifies every file made from it (outputs.py)."""
