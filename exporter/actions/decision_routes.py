"""HTTP routes of approval mode and the runtime switches:

    GET  /api/v1/decisions                  pending decisions (a starter sees its own)
    POST /api/v1/decisions/{id}/approve     an approver, not the requester: the start goes ahead
    POST /api/v1/decisions/{id}/reject      an approver, or the requester withdrawing it
    GET  /status/decisions/{id}             a page with Approve / Reject buttons for people
    GET  /api/v1/switches                   kill switch and dry run as they hold now
    PUT  /api/v1/switches                   an admin sets them; kept in the audit log

Approve and reject take a bearer token (JSON, or no body), or the decision page's form: the token typed
into the form's body, never in a URL; a form posted from another origin is refused (CSRF).
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from exporter.actions.audit.log import AuditWriteError
from exporter.actions.model import StartRequest
from exporter.actions.switches import SWITCHES
from exporter.config import Caller
from exporter.http import decision_page
from exporter.http.auth import unauthorized
from exporter.http.request_body import BadRequest, content_type, json_object, read_limited

if TYPE_CHECKING:  # types only
    from exporter.actions.engine import Actions

# the endpoints, in the order decision_routes binds their handlers; without actions the same paths answer
DECISION_PATHS = (
    ("/api/v1/decisions", ("GET",)),
    ("/api/v1/decisions/{id}/approve", ("POST",)),
    ("/api/v1/decisions/{id}/reject", ("POST",)),
    ("/status/decisions/{id}", ("GET",)),
    ("/api/v1/switches", ("GET", "PUT")),
)
FORM = "application/x-www-form-urlencoded"
MAX_BODY = 16 * 1024
MAX_FORM = 4 * 1024  # a token, a reason of 500 characters, what the page showed
APPROVAL_FIELDS = {"reason", "mode", "fingerprint"}
FORM_FIELDS = {"token", *APPROVAL_FIELDS}


async def _read(request: Request) -> bytes:
    return await read_limited(request, MAX_BODY)


def _json_fields(body: bytes, known: set[str]) -> dict[str, Any]:
    return json_object(body, known) if body.strip() else {}


def _text_field(data: dict[str, Any], name: str) -> str | None:
    value = data.get(name)
    if value is not None and (not isinstance(value, str) or len(value) > 100):
        raise BadRequest(400, f"{name} must be a string of at most 100 characters")
    return value


def _reason(data: dict[str, Any]) -> str:
    reason = data.get("reason", "")
    if not isinstance(reason, str) or len(reason) > 500:
        raise BadRequest(400, "reason must be a string of at most 500 characters")
    return reason


def _same_origin(request: Request) -> None:
    origin = request.headers.get("origin")
    if origin is not None and urlsplit(origin).netloc != request.headers.get("host", ""):
        raise BadRequest(403, "a form posted from another site is refused")


def _form(body: bytes) -> dict[str, str]:
    """The decision page's form: one token, an optional reason, what the page showed; each once."""
    try:
        fields = parse_qs(body.decode("utf-8"), strict_parsing=bool(body), max_num_fields=len(FORM_FIELDS))
    except (UnicodeDecodeError, ValueError):
        raise BadRequest(400, "form body is not valid") from None
    if any(len(v) != 1 for v in fields.values()) or set(fields) - FORM_FIELDS:
        raise BadRequest(400, f"form fields: {', '.join(sorted(FORM_FIELDS))}, each once")
    return {k: v[0] for k, v in fields.items()}


def decision_routes(actions: Actions) -> list[Route]:
    def caller_of(header: str | None, request: Request) -> Caller | None:
        caller = actions.authenticate(header)
        if caller is None:  # counted and logged (at most once a minute) like any request without a token
            remote = request.client.host if request.client else ""
            req = StartRequest(plan_ref="", source="api", remote=remote)
            actions.refuse(req, None, "unauthorized", 401, "missing or wrong token")
        return caller

    async def who(request: Request) -> tuple[Caller | None, dict[str, Any], bool]:
        """The caller and the fields of an approve or reject: from a bearer token and JSON, or a form.
        A bearer token is checked before any body is read; a form (its token is in the body) must come
        from this exporter's page and declare a small length (the listener bounds its time)."""
        ctype = content_type(request)
        if ctype == FORM:
            _same_origin(request)
            declared = request.headers.get("content-length", "")
            if not declared.isdigit() or int(declared) > MAX_FORM:
                raise BadRequest(411, f"a form needs a Content-Length of at most {MAX_FORM} bytes")
            fields = _form(await read_limited(request, MAX_FORM))
            return caller_of(f"Bearer {fields.get('token', '')}", request), fields, True
        caller = caller_of(request.headers.get("authorization"), request)
        if caller is None:
            return None, {}, False
        body = await _read(request)
        if body.strip() and ctype != "application/json":
            raise BadRequest(415, "Content-Type must be application/json (or a form from the decision page)")
        return caller, _json_fields(body, APPROVAL_FIELDS), False

    def answer(status: int, content: dict[str, Any], as_page: bool) -> Response:
        if as_page:
            return HTMLResponse(
                decision_page.result(status, content), status_code=status, headers=decision_page.HEADERS
            )
        return unauthorized(content) if status == 401 else JSONResponse(content, status_code=status)

    async def approve(request: Request) -> Response:
        return await verdict(request, "approve")

    async def reject(request: Request) -> Response:
        return await verdict(request, "reject")

    async def verdict(request: Request, verb: str) -> Response:
        did = request.path_params["id"][:64]
        as_page = request.headers.get("content-type", "").startswith(FORM)
        try:
            caller, fields, as_page = await who(request)
            reason = _reason(fields)
            mode, fingerprint = _text_field(fields, "mode"), _text_field(fields, "fingerprint")
        except BadRequest as exc:
            return answer(
                exc.status, {"request_id": did, "outcome": "invalid", "reason": exc.reason}, as_page
            )
        if caller is None:
            return answer(
                401,
                {"request_id": did, "outcome": "unauthorized", "reason": "missing or wrong token"},
                as_page,
            )
        remote = request.client.host if request.client else ""
        if verb == "approve":
            d = await run_in_threadpool(
                partial(
                    actions.approve,
                    caller,
                    did,
                    remote,
                    reason,
                    mode=mode,
                    fingerprint=fingerprint,
                )
            )
            content = {**d.to_json(), "approver": caller.name}
            now = actions.preview(did) if d.status in (400, 409) else None
            if now is not None:  # still waiting: what approving would do now
                content["now"] = now
            return answer(d.status, content, as_page)
        status, content = await run_in_threadpool(actions.reject, caller, did, reason)
        return answer(status, content, as_page)

    async def listing(request: Request) -> Response:
        caller = caller_of(request.headers.get("authorization"), request)
        if caller is None:
            return unauthorized()
        return JSONResponse({"decisions": actions.pending(caller)})

    async def page(request: Request) -> Response:
        did = request.path_params["id"][:64]
        decision, now = await run_in_threadpool(actions.decision, did)
        shown = None if decision is None else decision.shown()
        return HTMLResponse(
            decision_page.render(did, shown, now, actions.settings.approval_timeout_seconds),
            status_code=200 if decision is not None else 404,
            headers=decision_page.HEADERS,
        )

    async def switches(request: Request) -> Response:
        caller = caller_of(request.headers.get("authorization"), request)
        if caller is None:
            return unauthorized()
        if request.method == "GET":
            return JSONResponse(actions.switches().to_json())
        if "admin" not in caller.roles:
            return JSONResponse({"error": f"caller {caller.name!r} has no admin role"}, status_code=403)
        try:
            if content_type(request) != "application/json":
                raise BadRequest(415, "Content-Type must be application/json")
            data = _json_fields(await _read(request), {*SWITCHES, "reason"})
            changes = {k: data[k] for k in SWITCHES if k in data}
            if not changes or any(not isinstance(v, bool) for v in changes.values()):
                raise BadRequest(400, f"give {' and/or '.join(SWITCHES)} as true or false")
            reason = _reason(data)
        except BadRequest as exc:
            return JSONResponse({"error": exc.reason}, status_code=exc.status)
        try:
            now = await run_in_threadpool(actions.set_switches, caller, changes, reason)
        except AuditWriteError as exc:
            return JSONResponse(
                {"error": f"{exc}: the switch must be on record to hold; unchanged"}, status_code=503
            )
        return JSONResponse(now.to_json())

    handlers = [listing, approve, reject, page, switches]
    return [Route(path, h, methods=list(m)) for (path, m), h in zip(DECISION_PATHS, handlers, strict=True)]
