"""The exporter's settings: their model (model.py, each field's kind and default declared once, with
fields.py), one loader for every section (values.py), the sections that need more (actions.py,
notifications.py), and the order file < environment < flags (load.py).

The settings classes are importable from here; the loader from exporter.config.load.
"""

from exporter.config.fields import ConfigError
from exporter.config.model import (
    ANNOUNCED,
    APPROVAL_MODES,
    LOG_FORMATS,
    LOG_LEVELS,
    NOTIFICATION_FORMATS,
    ROLES,
    ActionSettings,
    Announced,
    Caller,
    CollectSettings,
    Config,
    EMSettings,
    NotificationTarget,
    PlanEntry,
    PollSettings,
    ReadinessSettings,
    WebSettings,
    parse_listen_address,
)

__all__ = [
    "ANNOUNCED",
    "APPROVAL_MODES",
    "LOG_FORMATS",
    "LOG_LEVELS",
    "NOTIFICATION_FORMATS",
    "ROLES",
    "ActionSettings",
    "Announced",
    "Caller",
    "CollectSettings",
    "Config",
    "ConfigError",
    "EMSettings",
    "NotificationTarget",
    "PlanEntry",
    "PollSettings",
    "ReadinessSettings",
    "WebSettings",
    "parse_listen_address",
]
