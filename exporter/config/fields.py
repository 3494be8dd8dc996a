"""How a setting is declared: its kind (number, flag, choice, text) and default, once, beside its field;
values.py reads every declared field of a section by its kind. Secrets and lists have loaders of their
own (they come from files, or need more than one check)."""

from __future__ import annotations

from dataclasses import Field, field, fields
from typing import Any


class ConfigError(ValueError):
    pass


def number(default: float, *, minimum: float) -> Any:
    """A number (an integer where the field is `int`) of at least `minimum`."""
    return field(default=default, metadata={"kind": "number", "minimum": minimum})


def flag(default: bool) -> Any:
    return field(default=default, metadata={"kind": "flag"})


def choice(default: str, choices: tuple[str, ...]) -> Any:
    """One of `choices` (read in lower case)."""
    return field(default=default, metadata={"kind": "choice", "choices": choices})


def text(default: str | None = None) -> Any:
    """A non-empty string, or the default when absent."""
    return field(default=default, metadata={"kind": "text"})


def declared(cls: type) -> list[Field[Any]]:
    """The fields of a settings class read by kind."""
    return [f for f in fields(cls) if "kind" in f.metadata]
