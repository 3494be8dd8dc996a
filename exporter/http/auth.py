"""Who may call: bearer tokens and basic credentials, compared in constant time. The listener's optional
auth and the action endpoints' caller tokens both check here."""

from __future__ import annotations

import base64
import binascii
import hmac
from collections.abc import Sequence
from typing import Any

from starlette.responses import JSONResponse

from exporter.config import WebSettings
from exporter.secret import Secret


def bearer(authorization: str | None) -> bytes | None:
    """The token of an `Authorization: Bearer <token>` header, or None."""
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip().encode()


def matching(given: bytes | None, tokens: Sequence[Secret]) -> int | None:
    """The index of the token `given` equals. Every token is compared, so timing says nothing about
    which one nearly matched."""
    found = None
    for i, token in enumerate(tokens):
        if hmac.compare_digest(given or b"\0", token.reveal().encode()) and given is not None:
            found = i
    return found


def allows(web: WebSettings, authorization: str | None) -> bool:
    """The listener's own auth (web.basic_auth or web.bearer_token_file); open when neither is set."""
    if web.basic_password is None and web.bearer_token is None:
        return True
    if web.bearer_token is not None:
        return matching(bearer(authorization), [web.bearer_token]) == 0
    scheme, _, value = (authorization or "").partition(" ")
    try:
        user, _, password = base64.b64decode(value.strip(), validate=True).decode().partition(":")
    except (binascii.Error, ValueError):  # not base64 (ValueError: bytes outside ASCII, e.g. \xff)
        return False
    assert web.basic_password is not None
    ok_user = hmac.compare_digest(user.encode(), (web.basic_username or "").encode())
    ok_password = hmac.compare_digest(password.encode(), web.basic_password.reveal().encode())
    return scheme.lower() == "basic" and ok_user and ok_password


def challenge(web: WebSettings) -> str:
    realm = 'realm="veeam-failover-exporter"'
    return f"Bearer {realm}" if web.bearer_token else f"Basic {realm}"


# what every action endpoint answers a request without a valid caller token with
BEARER_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="veeam-failover-exporter"'}


def unauthorized(content: dict[str, Any] | None = None) -> JSONResponse:
    """401 with the bearer challenge: the answer to a request without a valid caller token."""
    body = content if content is not None else {"error": "missing or wrong bearer token"}
    return JSONResponse(body, status_code=401, headers=BEARER_CHALLENGE)
