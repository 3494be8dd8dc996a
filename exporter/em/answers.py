"""EM's answers that are no entities: an Error body (XML or JSON), the logon session, the API root's
versions. The session reads them; the entities are `parse.py`'s."""

from __future__ import annotations

import json

from exporter.em.errors import ParseError
from exporter.em.model import LogonSession
from exporter.em.xmldoc import child, children, document_root, local, parse_document, text_of


def parse_error_message(body: bytes, content_type: str = "") -> str:
    """The `Message` of an EM `Error` body (XML or JSON), or a short description if there is none."""
    if "json" in content_type:
        try:
            data = json.loads(body.decode("utf-8-sig"))
        except (ValueError, UnicodeDecodeError):
            return "unreadable error body"
        if isinstance(data, dict):
            for key in ("Message", "message"):
                if isinstance(data.get(key), str):
                    return str(data[key])[:300]
        return "error body without a message"
    try:
        root = parse_document(body)
    except ParseError:
        return "unreadable error body"
    if local(root.tag) == "Error" and root.get("Message"):
        return (root.get("Message") or "")[:300]
    return "error body without a message"


def is_em_error(body: bytes, content_type: str = "") -> bool:
    """Whether a body is EM's own `Error` document (XML root Error, or JSON with StatusCode and
    Message): an answer from EM itself, not from a proxy or gateway in front of it."""
    if "json" in content_type:
        try:
            data = json.loads(body.decode("utf-8-sig"))
        except (ValueError, UnicodeDecodeError):
            return False
        return isinstance(data, dict) and "StatusCode" in data and "Message" in data
    try:
        root = parse_document(body)
    except ParseError:
        return False
    return local(root.tag) == "Error" and root.get("StatusCode") is not None


def parse_api_versions(body: bytes) -> tuple[str, ...]:
    """`GET /api/` -> the names of the SupportedVersions EM lists (e.g. v1_5, v1_6, v1_7)."""
    root = document_root(body, "EnterpriseManager")
    versions = child(root, "SupportedVersions")
    if versions is None:
        return ()
    return tuple(v.get("Name") or "" for v in children(versions, "SupportedVersion") if v.get("Name"))


def parse_logon_session(body: bytes) -> LogonSession:
    root = document_root(body, "LogonSession")
    return LogonSession(
        session_id=text_of(root, "SessionId"), username=text_of(root, "UserName", required=False)
    )
