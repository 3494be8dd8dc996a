"""A value that must never reach logs, metrics, error messages or pages."""

from __future__ import annotations

from exporter.logs import register_secret


class Secret:
    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value
        register_secret(value)  # and never in a log line either, whoever would log it

    def reveal(self) -> str:
        return self._value

    def __bool__(self) -> bool:
        return bool(self._value)

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__
