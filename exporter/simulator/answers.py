"""How the simulator writes its answers: JSON or XML as asked, and with faults applied (unknown enums, cut
bodies, odd content types, resets, huge or slow bodies)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from typing import Any

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from exporter.simulator.faults import Faults


def wants_json(request: Request) -> bool:
    return "application/json" in request.headers.get("accept", "")


_ENUMS = re.compile(rb"<(State|Result)>[A-Za-z]+</")


def faulty(body: bytes, status: int, media: str, headers: dict[str, str], f: Faults) -> Response:
    """An answer with the active faults applied."""
    if f.unknown_enums:
        body = _ENUMS.sub(lambda m: b"<" + m.group(1) + b">Hibernating</", body)
    if f.truncate:
        body = body[: len(body) // 2]
    if f.content_type:
        media = f.content_type
    if f.reset:
        return _Reset(body)
    if f.huge_bytes:
        head, _, tail = body.partition(b"?>")
        filler = max(0, f.huge_bytes - len(body))

        async def huge() -> AsyncIterator[bytes]:
            yield head + b"?>"
            for i in range(0, filler, 1 << 20):
                yield b" " * min(1 << 20, filler - i)  # whitespace: still valid XML, only big
            yield tail

        return StreamingResponse(huge(), status_code=status, media_type=media, headers=headers)
    if f.trickle:

        async def trickle() -> AsyncIterator[bytes]:
            for i in range(0, len(body), 64):
                yield body[i : i + 64]
                await asyncio.sleep(f.trickle)

        return StreamingResponse(trickle(), status_code=status, media_type=media, headers=headers)
    return Response(body, status_code=status, media_type=media, headers=headers)


class _Reset(Response):
    """Promises the whole body, sends half, and drops the connection."""

    def __init__(self, body: bytes) -> None:
        super().__init__(body, media_type="application/xml")
        self._half = body[: len(body) // 2]

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"application/xml"),
                    (b"content-length", str(len(self.body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": self._half, "more_body": True})
        raise ConnectionResetError("simulated connection reset")
