"""A caller's request body, read with care: a size limit kept while reading (a chunked body without a
Content-Length is not buffered whole), and a JSON object read strictly, its unknown fields refused (a
typo such as "dryrun" must never turn a rehearsal into a real failover)."""

from __future__ import annotations

from typing import Any

from starlette.requests import ClientDisconnect, Request

from exporter.http import strict_json


class BadRequest(Exception):
    """A request we refuse: its HTTP status and a reason that is safe to show."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def content_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


async def read_limited(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > limit):
        raise BadRequest(413, f"body larger than {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:  # no Content-Length (chunked): stop reading, do not buffer it all
                raise BadRequest(413, f"body larger than {limit} bytes")
            chunks.append(chunk)
    except ClientDisconnect:  # the listener closed it (body time-out, room for others) or the client left
        raise BadRequest(408, "the body did not arrive") from None
    return b"".join(chunks)


def json_object(body: bytes, known: set[str]) -> dict[str, Any]:
    try:
        data: Any = strict_json.loads(body)
    except strict_json.StrictJSONError as exc:
        raise BadRequest(400, str(exc)) from None
    if not isinstance(data, dict):
        raise BadRequest(400, "body must be a JSON object")
    unknown = sorted(set(data) - known)
    if unknown:
        raise BadRequest(400, f"unknown field {unknown[0][:40]!r}; known: {', '.join(sorted(known))}")
    return data
