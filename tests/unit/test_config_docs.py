"""docs/configuration.md names every key the loader takes, with its true default."""

from __future__ import annotations

import re
from dataclasses import Field
from pathlib import Path
from typing import Any

from exporter.config import model
from exporter.config.fields import declared
from exporter.config.load import SECTIONS, TOP_KEYS
from exporter.config.notifications import KEYS as NOTIFICATION_KEYS
from exporter.config.values import keys

DOC = Path(__file__).parents[2] / "docs" / "configuration.md"
ROW = re.compile(r"^\| `([^`]+)` \| (?:`([^`]*)` )?\|", re.M)


def every_key() -> dict[str, Field[Any] | None]:
    """Every YAML key, as the docs write it, with its declared field (None: a key with a loader of
    its own)."""
    sections: list[tuple[str, type, set[str]]] = [
        ("", model.Config, TOP_KEYS - set(SECTIONS)),
        ("em.", model.EMSettings, SECTIONS["em"]),
        ("poll.", model.PollSettings, SECTIONS["poll"] - {"collect"}),
        ("poll.collect.", model.CollectSettings, keys(model.CollectSettings)),
        ("readiness.", model.ReadinessSettings, SECTIONS["readiness"]),
        ("actions.", model.ActionSettings, SECTIONS["actions"] - {"notifications"}),
        ("actions.notifications[].", model.NotificationTarget, NOTIFICATION_KEYS),
        ("web.", model.WebSettings, SECTIONS["web"]),
    ]
    out: dict[str, Field[Any] | None] = {}
    for prefix, cls, allowed in sections:
        fields = {f.name: f for f in declared(cls)}
        out.update({prefix + key: fields.get(key) for key in allowed})
    return out


def shown(default: Any) -> str:
    if isinstance(default, bool):
        return str(default).lower()
    if default is None:
        return "none"
    if isinstance(default, float) and default.is_integer():
        return str(int(default))
    return str(default)


def test_the_docs_name_every_key_with_its_true_default() -> None:
    rows = {key: default for key, default in ROW.findall(DOC.read_text())}
    keys_ = every_key()
    assert len(keys_) > 70
    assert sorted(set(keys_) - set(rows)) == [], "keys missing from docs/configuration.md"
    assert sorted(set(rows) - set(keys_)) == [], "docs/configuration.md names keys the loader refuses"
    wrong = {
        key: (rows[key], shown(f.default)) for key, f in keys_.items() if f and rows[key] != shown(f.default)
    }
    assert wrong == {}, "(documented, true) defaults"
