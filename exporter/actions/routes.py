"""HTTP routes of the guarded start: the start endpoint, the Alertmanager receiver, the recent decisions."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from exporter.actions import alertmanager
from exporter.actions.model import Decision, Source, StartRequest
from exporter.config import Caller
from exporter.http import strict_json

if TYPE_CHECKING:  # types only
    from exporter.actions.engine import Actions


START_FIELDS = {"start_now", "start_date", "dry_run", "reason"}


class BadRequest(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def _json(decision: Decision, **headers: str) -> JSONResponse:
    return JSONResponse(decision.to_json(), status_code=decision.status, headers=headers or None)


async def _body(request: Request, limit: int) -> bytes:
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype != "application/json":
        raise BadRequest(415, "Content-Type must be application/json")
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > limit):
        raise BadRequest(413, f"body larger than {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:  # no Content-Length (chunked): stop reading, do not buffer it all
            raise BadRequest(413, f"body larger than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _start_request(plan_ref: str, body: bytes, idempotency_key: str | None, remote: str) -> StartRequest:
    try:
        data: Any = strict_json.loads(body)
    except strict_json.StrictJSONError as exc:
        raise BadRequest(400, str(exc)) from None
    if not isinstance(data, dict):
        raise BadRequest(400, "body must be a JSON object")
    unknown = sorted(set(data) - START_FIELDS)
    if unknown:
        # A typo such as "dryrun" must not turn a rehearsal into a real failover.
        raise BadRequest(400, f"unknown field {unknown[0][:40]!r}; known: {', '.join(sorted(START_FIELDS))}")
    start_now, start_date_raw = data.get("start_now"), data.get("start_date")
    if (start_now is True) == (start_date_raw is not None) or start_now not in (True, None):
        raise BadRequest(400, 'give exactly one of "start_now": true or "start_date": "<RFC 3339>"')
    start_date = None
    if start_date_raw is not None:
        start_date = _rfc3339(start_date_raw)
    dry_run = data.get("dry_run", False)
    if not isinstance(dry_run, bool):
        raise BadRequest(400, "dry_run must be true or false")
    reason = data.get("reason", "")
    if not isinstance(reason, str) or len(reason) > 500:
        raise BadRequest(400, "reason must be a string of at most 500 characters")
    if idempotency_key is not None and not (
        0 < len(idempotency_key) <= 200 and idempotency_key.isprintable()
    ):
        raise BadRequest(400, "Idempotency-Key must be 1-200 printable characters")
    return StartRequest(
        plan_ref=plan_ref,
        source="api",
        start_date=start_date,
        dry_run=dry_run,
        reason=reason,
        idempotency_key=None if idempotency_key is None else f"api:{idempotency_key}",
        remote=remote,
    )


def _rfc3339(value: Any) -> datetime:
    if not isinstance(value, str) or "T" not in value.upper():
        raise BadRequest(400, "start_date must be an RFC 3339 date-time, e.g. 2026-11-26T10:00:00Z")
    try:
        when = datetime.fromisoformat(value.replace("z", "Z").replace("Z", "+00:00"))
        if when.tzinfo is None:
            raise BadRequest(400, "start_date needs a time zone (Z or +hh:mm)")
        when = when.astimezone(UTC)  # year 1 with a positive offset lies before datetime's range
    except (ValueError, OverflowError):
        raise BadRequest(400, "start_date must be an RFC 3339 date-time, e.g. 2026-11-26T10:00:00Z") from None
    if when > datetime.now(UTC):
        raise BadRequest(400, "start_date is in the future")
    return when


def action_routes(actions: Actions | None) -> list[Route]:
    if actions is None:

        async def disabled(request: Request) -> Response:
            return JSONResponse({"error": "actions are disabled (set actions.enabled)"}, status_code=404)

        return [
            Route("/api/v1/plans/{plan}/start", disabled, methods=["POST"]),
            Route("/api/v1/alertmanager", disabled, methods=["POST"]),
            Route("/api/v1/actions", disabled, methods=["GET"]),
        ]
    limit = actions.settings.max_body_bytes
    label = actions.settings.alertmanager_plan_label

    def remote(request: Request) -> str:
        return request.client.host if request.client else ""

    async def authenticated(
        request: Request, source: Source, plan_ref: str | None = None
    ) -> Caller | Response:
        caller = actions.authenticate(request.headers.get("authorization"))
        if caller is None:
            d = await run_in_threadpool(
                actions.refuse,
                source,
                "unauthorized",
                401,
                "missing or wrong bearer token",
                remote=remote(request),
                plan_ref=plan_ref,
            )
            return _json(d, **{"WWW-Authenticate": 'Bearer realm="veeam-failover-exporter"'})
        return caller

    async def start(request: Request) -> Response:
        plan_ref = request.path_params["plan"]
        caller = await authenticated(request, "api", plan_ref)
        if isinstance(caller, Response):
            return caller
        try:
            req = _start_request(
                plan_ref, await _body(request, limit), request.headers.get("idempotency-key"), remote(request)
            )
        except BadRequest as exc:
            d = await run_in_threadpool(
                actions.refuse,
                "api",
                "invalid",
                exc.status,
                exc.reason,
                caller=caller,
                remote=remote(request),
                plan_ref=plan_ref,
            )
            return _json(d)
        return _json(await run_in_threadpool(actions.start, caller, req))

    async def webhook(request: Request) -> Response:
        caller = await authenticated(request, "alertmanager")
        if isinstance(caller, Response):
            return caller
        try:
            alerts = alertmanager.decode(await _body(request, limit))
        except (BadRequest, alertmanager.PayloadError) as exc:
            status = exc.status if isinstance(exc, BadRequest) else 400
            d = await run_in_threadpool(
                actions.refuse,
                "alertmanager",
                "invalid",
                status,
                str(exc),
                caller=caller,
                remote=remote(request),
            )
            return _json(d)
        results, status = await run_in_threadpool(
            _notification, actions, caller, alerts, label, remote(request)
        )
        return JSONResponse({"results": results}, status_code=status)

    async def recent(request: Request) -> Response:
        caller = actions.authenticate(request.headers.get("authorization"))
        if caller is None:
            return JSONResponse(
                {"error": "missing or wrong bearer token"},
                status_code=401,
                headers={"WWW-Authenticate": 'Bearer realm="veeam-failover-exporter"'},
            )
        try:
            limit_n = min(200, max(1, int(request.query_params.get("limit", "50"))))
        except ValueError:
            return JSONResponse({"error": "limit must be a number"}, status_code=400)
        # a caller sees its own decisions; only an admin sees everyone's (keys, plans, reasons)
        mine = None if "admin" in caller.roles else caller.name
        return JSONResponse({"actions": actions.recorder.journal.recent(limit_n, mine)})

    return [
        Route("/api/v1/plans/{plan}/start", start, methods=["POST"]),
        Route("/api/v1/alertmanager", webhook, methods=["POST"]),
        Route("/api/v1/actions", recent, methods=["GET"]),
    ]


def _notification(
    actions: Actions, caller: Caller, alerts: list[alertmanager.Alert], label: str, remote: str
) -> tuple[list[dict[str, Any]], int]:
    """One start request per firing alert that names a plan. The reply's status tells Alertmanager whether
    to retry: 5xx if any start may succeed later, the refusal's 4xx if none can, 2xx otherwise."""
    results: list[dict[str, Any]] = []
    decisions: list[Decision] = []
    for alert in alerts:
        plan = alert.labels.get(label)
        if alert.status != "firing" or not plan:
            reason = (
                "resolved alerts never start anything" if alert.status != "firing" else f"no {label} label"
            )
            actions.recorder.journal.note(
                {
                    "source": "alertmanager",
                    "caller": caller.name,
                    "remote": remote,
                    "alert_fingerprint": alert.fingerprint,
                    "plan_ref": plan,
                    "outcome": "ignored",
                    "reason": reason,
                }
            )
            results.append({"fingerprint": alert.fingerprint, "outcome": "ignored", "reason": reason})
            continue
        d = actions.start(
            caller,
            StartRequest(
                plan_ref=plan,
                source="alertmanager",
                remote=remote,
                idempotency_key=alert.idempotency_key,
                alert_fingerprint=alert.fingerprint,
            ),
        )
        decisions.append(d)
        results.append({"fingerprint": alert.fingerprint, **d.to_json()})
    if any(d.status >= 500 for d in decisions):
        return results, 503
    if decisions and all(d.status >= 400 for d in decisions):
        return results, max(d.status for d in decisions)
    return results, 202 if any(d.outcome == "accepted" for d in decisions) else 200
