"""EM's answers that are no entities: an Error body (XML or JSON), the logon session, the API root's
versions. The session reads them; the entities are `parse.py`'s."""

from __future__ import annotations

import json
from collections.abc import Iterable

import httpx

from exporter.em.errors import EMError, ParseError, Reason
from exporter.em.model import LogonSession
from exporter.em.xmldoc import child, children, document_root, local, parse_document, text_of

TOKEN_HEADER = "X-RestSvcSessionId"  # noqa: S105 - a header name


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


# -- whether an answer can be used ---------------------------------------------------------------


def unusable_answer(
    resp: httpx.Response, body: bytes, endpoint: str, expect: Iterable[int]
) -> EMError | None:
    """Why an answer cannot be used: an unexpected status (with EM's message), or a body that is not
    XML (a proxy or a login page in between); None if it can."""
    ctype = resp.headers.get("content-type", "")
    if resp.status_code not in expect:
        msg = parse_error_message(body, ctype)
        kind: Reason = "http_5xx" if resp.status_code >= 500 else "http_4xx"
        from_em = is_em_error(body, ctype)
        return EMError(kind, f"{endpoint}: HTTP {resp.status_code}: {msg}", resp.status_code, from_em=from_em)
    if body and ctype and "xml" not in ctype.lower():
        return EMError(
            "content_type",
            f"{endpoint}: EM answered {ctype[:60]!r}, expected application/xml "
            "(a proxy or a login page in between?)",
        )
    return None


def logon_answer(resp: httpx.Response, body: bytes, username: str) -> tuple[str, str]:
    """The token and the logon session ID of a logon's answer, or why there are none."""
    if resp.status_code != 201:
        raise logon_refused(resp.status_code, resp.headers.get("content-type", ""), body, username)
    token = resp.headers.get(TOKEN_HEADER)
    if not token:
        raise EMError("logon", f"EM logon answered 201 without a {TOKEN_HEADER} header")
    try:
        return token, parse_logon_session(body).session_id
    except ParseError as exc:
        raise EMError("parse", f"EM logon: {exc}") from None


def logon_refused(status: int, content_type: str, body: bytes, username: str) -> EMError:
    msg = parse_error_message(body, content_type)
    refused = status in (401, 403)
    hint = " (check the username, the password and the account's EM role)" if refused else ""
    # refused credentials are a logon problem; an overloaded EM is a 5xx like any other
    reason: Reason = "logon" if refused else ("http_5xx" if status >= 500 else "http_4xx")
    return EMError(reason, f"EM refused the logon as {username!r}: HTTP {status} {msg}{hint}", status)
