"""Captures: the EM answers of one full poll, in one JSON file a user can attach to a bug report.

What is recorded: every answer the poller's requests got (API root, plans, session pages, replica
points), as EM sent it. What is never recorded: the logon and logout exchanges (the token and the logon
session ID live there), and no request or response header at all. `pseudonymize` denies by default: it
replaces tenant, plan, VM and backup server names, every GUID and host names in links, each consistently
(the same name gets the same pseudonym everywhere in the file), keeps numbers, times, truth values and
the schema's enums, and turns every other text and attribute value into "redacted" (EM's error messages,
host names, addresses, accounts, elements it does not know).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import uuid
import xml.etree.ElementTree as ET
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from exporter.em import xmldoc
from exporter.em.errors import ParseError

FORMAT = "veeam-failover-exporter-capture"
VERSION = 1
NS = "http://www.veeam.com/ent/v1.0"
_GUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


class CaptureError(ValueError):
    pass


@dataclass(frozen=True)
class Answer:
    request: str  # "GET /query?type=..." relative to the API root
    status: int
    content_type: str
    body: str


@dataclass
class Capture:
    captured_at: str
    exporter_version: str
    pseudonymized: bool = False
    answers: list[Answer] = field(default_factory=list)

    def record(self, method: str, path: str, status: int, content_type: str, body: bytes) -> None:
        self.answers.append(Answer(f"{method} {path}", status, content_type, body.decode("utf-8", "replace")))


def new_capture(version: str) -> Capture:
    return Capture(captured_at=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"), exporter_version=version)


def write_capture(capture: Capture, path: str) -> None:
    data = {"format": FORMAT, "version": VERSION, **asdict(capture)}
    # 0600: even pseudonymized, a capture describes a customer's DR set-up
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=1)
        f.write("\n")


def read_capture(path: str) -> Capture:
    try:
        data: Any = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise CaptureError(f"cannot read {path}: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise CaptureError(f"{path}: not JSON: {exc}") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise CaptureError(f"{path}: not a {FORMAT} file")
    if data.get("version") != VERSION:
        raise CaptureError(f"{path}: capture version {data.get('version')!r}; this exporter reads {VERSION}")
    try:
        answers = [Answer(**a) for a in data["answers"]]
        return Capture(
            captured_at=str(data["captured_at"]),
            exporter_version=str(data["exporter_version"]),
            pseudonymized=bool(data.get("pseudonymized")),
            answers=answers,
        )
    except (KeyError, TypeError) as exc:
        raise CaptureError(f"{path}: malformed capture ({exc})") from None


# -- pseudonyms -----------------------------------------------------------------------------------

_PLAN_LINK_TYPES = frozenset(
    {
        "CloudFailoverPlanReference",
        "CloudFailoverPlan",
        "CloudFailoverSession",
        "CloudFailoverSessionReference",
        "FailoverPlanReference",
    }
)
_POINT_LINK_TYPES = frozenset({"CloudVmReplicaPointReference", "CloudVmReplicaPoint"})
_PLAN_HOLDERS = frozenset({"CloudFailoverPlan", "CloudFailoverSession"})
_POINT_HOLDERS = frozenset({"CloudVmReplicaPoint", "CloudReplica"})
_VM_NAME_PARENTS = frozenset(
    {"CloudFailoveredVm", "CloudFailoverPlanVm", "CloudVmReplicaPoint", "CloudReplica"}
)


class Pseudonyms:
    """Consistent stand-ins: the same real value gets the same pseudonym throughout one capture."""

    def __init__(self) -> None:
        self._key = uuid.UUID(bytes=secrets.token_bytes(16))  # no way back from a pseudonym
        self._names: dict[tuple[str, str], str] = {}

    def name(self, kind: str, real: str) -> str:
        if not real:
            return real
        key = (kind, real)
        if key not in self._names:
            n = sum(1 for k in self._names if k[0] == kind) + 1
            self._names[key] = _FORMS[kind].format(n=n)
        return self._names[key]

    def guid(self, real: str) -> str:
        return str(uuid.uuid5(self._key, real.lower()))

    def guids(self, text: str) -> str:
        return _GUID.sub(lambda m: self.guid(m.group(0)), text)

    def point_name(self, real: str) -> str:
        vm, at, when = real.rpartition("@")
        return f"{self.name('vm', vm)}@{when}" if at else self.name("vm", real)

    def href(self, real: str) -> str:
        parts = urlsplit(real)
        if not parts.scheme:
            return self.guids(real)
        return urlunsplit(
            (parts.scheme, "em.example.invalid:9398", self.guids(parts.path), self.guids(parts.query), "")
        )


_FORMS = {
    "plan": "plan-{n:03d}",
    "tenant": "tenant-{n:03d}",
    "vm": "vm-{n:04d}",
    "server": "vbr-{n:02d}.example.invalid",
}


def pseudonymize(capture: Capture) -> Capture:
    names = Pseudonyms()
    ET.register_namespace("", NS)
    answers = [
        Answer(
            names.guids(a.request),
            a.status,
            a.content_type,
            _pseudonymize_body(a.body, names) if "xml" in a.content_type.lower() and a.body.strip() else "",
        )
        for a in capture.answers
    ]
    return Capture(capture.captured_at, capture.exporter_version, True, answers)


def _pseudonymize_body(body: str, names: Pseudonyms) -> str:
    try:
        root = xmldoc.parse_document(body.encode("utf-8"))
    except ParseError:
        return ""  # never keep what we cannot read, and so cannot clean
    _walk(root, None, names)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode")


def _walk(el: ET.Element, parent: str | None, names: Pseudonyms) -> None:
    tag = el.tag.rpartition("}")[2]
    for attr, val in list(el.attrib.items()):
        el.set(attr, _attribute(tag, attr, val, el, names))
    if el.text and el.text.strip():
        el.text = _text(tag, parent, el.text, names)
    for child in el:
        _walk(child, tag, names)


def _attribute(tag: str, attr: str, val: str, el: ET.Element, names: Pseudonyms) -> str:
    if attr == "Href":
        return names.href(val)
    if attr == "Name":
        link_type = el.get("Type") or ""
        if tag in _PLAN_HOLDERS or link_type in _PLAN_LINK_TYPES or (tag == "Ref" and "Plan" in link_type):
            return names.name("plan", val)
        if tag == "Ref" and "Session" in link_type:
            return names.name("plan", val)
        if tag in _POINT_HOLDERS or tag == "VmReplicaPointLink" or link_type in _POINT_LINK_TYPES:
            return names.point_name(val)
        if tag == "Ref" and "ReplicaPoint" in link_type:
            return names.point_name(val)
        if link_type == "BackupServerReference":
            return names.name("server", val)
        if link_type == "CloudTenant":
            return names.name("tenant", val)
        if link_type == "CloudReplicaReference":
            return names.name("vm", val)
        return _kept_or_redacted(val, names)
    if attr in ("VmName", "VmDisplayName"):
        return names.name("vm", val)
    if attr == "CloudFailoverPlanName":
        return names.name("plan", val)
    if attr in _SCHEMA_ATTRIBUTES:
        return val if _WORD.fullmatch(val) else _REDACTED
    return _kept_or_redacted(val, names)


def _text(tag: str, parent: str | None, text: str, names: Pseudonyms) -> str:
    if tag == "TenantName":
        return names.name("tenant", text.strip())
    if tag in ("Name", "VmName", "VmDisplayName") and parent in _VM_NAME_PARENTS:
        return names.name("vm", text.strip())
    if tag in _ENUM_ELEMENTS and _WORD.fullmatch(text.strip()):
        return text
    return _kept_or_redacted(text, names)


# Default-deny: a value is kept only if it is of a form that cannot carry a customer's words (a number,
# a time, a truth value, a GUID or Veeam URN, pseudonymized), or is an enum of EM's schema where the schema
# puts one; every other text or attribute (messages, host names, addresses, accounts, tenant references,
# plan names in elements we do not know) becomes "redacted".
_REDACTED = "redacted"
_WORD = re.compile(r"[A-Za-z][A-Za-z0-9]{0,59}")
_SCHEMA_ATTRIBUTES = frozenset({"Type", "Rel", "Format"})
_ENUM_ELEMENTS = frozenset({"State", "Result", "Operation", "Type", "Status", "Platform", "JobType", "Kind"})
_SAFE = re.compile(
    r"\s*(?:-?\d+(?:\.\d+)?|true|false|True|False|"
    r"\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?(?:Z|[+-]\d{2}:?\d{2})?|"
    r"(?:urn:veeam:[A-Za-z]+:)?[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})\s*"
)


def _kept_or_redacted(value: str, names: Pseudonyms) -> str:
    if not value.strip():
        return value
    return names.guids(value) if _SAFE.fullmatch(value) else _REDACTED
