"""Reading settings: a mapping with known keys, every declared field of a section by its kind
(fields.py), a YAML file, a secret from a file. Each error names the key and what is wrong."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from exporter.config.fields import ConfigError, declared
from exporter.secret import Secret


def mapping(value: Any, key: str, allowed: set[str]) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError(f"{key}: must be a mapping, got {type(value).__name__}")
    unknown = sorted(set(map(str, value)) - allowed)
    if unknown:
        hint = ""
        if "password" in unknown:
            hint = " (put the password in a file and set em.password_file, or set VEEAM_EM_PASSWORD)"
        raise ConfigError(f"{key}.{unknown[0]}: unknown setting{hint}; known: {', '.join(sorted(allowed))}")
    return value


def number(
    d: dict[str, Any], key: str, where: str, default: float, *, minimum: float, integer: bool = False
) -> float:
    v = d.get(key, default)
    if isinstance(v, bool) or not isinstance(v, int | float) or (integer and not float(v).is_integer()):
        raise ConfigError(f"{_at(where, key)}: must be {'an integer' if integer else 'a number'}, got {v!r}")
    if v < minimum:
        raise ConfigError(f"{_at(where, key)}: must be at least {minimum:g}, got {v!r}")
    return float(v)


def _at(where: str, key: str) -> str:
    """The key as the YAML names it (top-level keys have no section)."""
    return f"{where}.{key}" if where else key


def section(cls: type, d: dict[str, Any], where: str) -> dict[str, Any]:
    """Every declared field of a settings class (fields.py) read from `d` by its kind, defaults and
    minimums from the fields themselves: one loader for every section, no default written twice."""
    out: dict[str, Any] = {}
    for f in declared(cls):
        kind, default = f.metadata["kind"], f.default
        if kind == "number":
            integer = f.type == "int"
            assert isinstance(default, int | float), f"{cls.__name__}.{f.name} needs a default"
            v = number(d, f.name, where, default, minimum=f.metadata["minimum"], integer=integer)
            out[f.name] = int(v) if integer else v
        elif kind == "flag":
            assert isinstance(default, bool)
            out[f.name] = flag(d, f.name, where, default)
        elif kind == "choice":
            out[f.name] = one_of(d, f.name, where, str(default), f.metadata["choices"])
        else:
            given = string(d, f.name, where)
            out[f.name] = default if given is None else given
    return out


def keys(cls: type) -> set[str]:
    """The keys a section's declared fields take."""
    return {f.name for f in declared(cls)}


def one_of(d: dict[str, Any], key: str, where: str, default: str, choices: tuple[str, ...]) -> str:
    v = d.get(key, default)
    if not isinstance(v, str) or v.lower() not in choices:
        raise ConfigError(f"{_at(where, key)}: must be one of {', '.join(choices)}, got {v!r}")
    return v.lower()


def string(d: dict[str, Any], key: str, where: str) -> str | None:
    v = d.get(key)
    if v is None:
        return None
    if not isinstance(v, str) or not v.strip():
        raise ConfigError(f"{_at(where, key)}: must be a non-empty string, got {v!r}")
    return v


class _RepeatedKey(yaml.constructor.ConstructorError):
    pass


class _UniqueKeys(yaml.SafeLoader):
    """PyYAML's safe loader, but a key given twice in one mapping is an error, not the last one winning
    (two callers of one name in the tokens file, say)."""

    def construct_mapping(self, node: yaml.Node, deep: bool = False) -> dict[Any, Any]:
        assert isinstance(node, yaml.MappingNode)
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise _RepeatedKey(None, None, f"{str(key)[:60]!r} given twice", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def read_yaml(path: str) -> dict[str, Any]:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"config file {path}: {exc.strerror or exc}") from None
    try:
        data = yaml.load(text, Loader=_UniqueKeys)  # noqa: S506 - a SafeLoader, refusing repeated keys
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        what = f": {exc.problem}" if isinstance(exc, _RepeatedKey) else ""
        raise ConfigError(f"config file {path}: not valid YAML{where}{what}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path}: must be a YAML mapping at the top level")
    return data


def secret_file(path: str, where: str, *, strip: str | None = None) -> Secret:
    """A secret from a file, stripped of whitespace (of only `strip` at its end: a password may begin or
    end with spaces)."""
    try:
        raw = Path(path).read_text(encoding="utf-8")
        value = raw.rstrip(strip) if strip is not None else raw.strip()
    except OSError as exc:
        raise ConfigError(f"{where}: cannot read {path}: {exc.strerror or exc}") from None
    if not value:
        raise ConfigError(f"{where}: {path} is empty")
    return Secret(value)


def flag(d: dict[str, Any], key: str, where: str, default: bool) -> bool:
    v = d.get(key, default)
    if not isinstance(v, bool):
        raise ConfigError(f"{_at(where, key)}: must be true or false, got {v!r}")
    return v
