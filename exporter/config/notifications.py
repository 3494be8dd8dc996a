"""`actions.notifications`: the webhooks told of every decision that matters (actions/announce.py)."""

from __future__ import annotations

from typing import Any

from exporter.config.fields import ConfigError
from exporter.config.model import ANNOUNCED, NotificationTarget
from exporter.config.values import keys, mapping, secret_file, section, string
from exporter.secret import Secret

KEYS = keys(NotificationTarget) | {"name", "url", "url_file", "events"}


def notification_targets(value: Any, where: str) -> tuple[NotificationTarget, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise ConfigError(f"{where}: must be a list of webhooks")
    targets: list[NotificationTarget] = []
    for i, raw in enumerate(value):
        at = f"{where}[{i}]"
        d = mapping(raw, at, KEYS)
        name = string(d, "name", at)
        if name is None:
            raise ConfigError(f"{at}.name: required (it names the webhook in logs and metrics)")
        if name in (t.name for t in targets):
            raise ConfigError(f"{at}.name: {name!r} is used twice")
        targets.append(
            NotificationTarget(
                name=name,
                url=_url(d, at),
                events=_events(d.get("events"), at),
                **section(NotificationTarget, d, at),
            )
        )
    return tuple(targets)


def _url(d: dict[str, Any], at: str) -> Secret:
    """From url_file (a Slack webhook URL is its own credential) or url; never echoed in an error."""
    if ("url" in d) == ("url_file" in d):
        raise ConfigError(f"{at}: give exactly one of url or url_file")
    path = string(d, "url_file", at)
    url = secret_file(path, f"{at}.url_file") if path is not None else Secret(string(d, "url", at) or "")
    if not url.reveal().startswith(("http://", "https://")):
        raise ConfigError(f"{at}: the URL must start with http:// or https://")
    return url


def _events(value: Any, at: str) -> tuple[str, ...] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not value or any(v not in ANNOUNCED for v in value):
        raise ConfigError(f"{at}.events: must be a list of {', '.join(ANNOUNCED)}")
    return tuple(str(v) for v in value)
