"""HTTP routes of the guarded start: the start endpoint, the Alertmanager receiver, the recent decisions."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from exporter.actions import alertmanager
from exporter.actions.decision_routes import DECISION_PATHS, decision_routes
from exporter.actions.model import Decision, Outcome, Source, StartRequest
from exporter.config import Caller
from exporter.http.auth import unauthorized
from exporter.http.request_body import BadRequest, content_type, json_object, read_limited

if TYPE_CHECKING:  # types only
    from exporter.actions.engine import Actions


START_FIELDS = {"start_now", "start_date", "dry_run", "reason", "allow_vms_in_dr"}
# the endpoints of this module (the decisions' are decision_routes.DECISION_PATHS): enabled or not, the
# same paths answer
PATHS = (
    ("/api/v1/plans/{plan}/start", ("POST",)),
    ("/api/v1/alertmanager", ("POST",)),
    ("/api/v1/actions", ("GET",)),
)


def _json(decision: Decision) -> JSONResponse:
    return JSONResponse(decision.to_json(), status_code=decision.status)


async def _body(request: Request, limit: int) -> bytes:
    if content_type(request) != "application/json":
        raise BadRequest(415, "Content-Type must be application/json")
    return await read_limited(request, limit)


def _start_request(plan_ref: str, body: bytes, idempotency_key: str | None, remote: str) -> StartRequest:
    data = json_object(body, START_FIELDS)
    start_now, start_date_raw = data.get("start_now"), data.get("start_date")
    if (start_now is True) == (start_date_raw is not None) or start_now not in (True, None):
        raise BadRequest(400, 'give exactly one of "start_now": true or "start_date": "<RFC 3339>"')
    start_date = None
    if start_date_raw is not None:
        start_date = _rfc3339(start_date_raw)
    dry_run = data.get("dry_run", False)
    if not isinstance(dry_run, bool):
        raise BadRequest(400, "dry_run must be true or false")
    allow_vms_in_dr = data.get("allow_vms_in_dr", False)
    if not isinstance(allow_vms_in_dr, bool):
        raise BadRequest(400, "allow_vms_in_dr must be true or false")
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
        allow_vms_in_dr=allow_vms_in_dr,
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


def action_routes(actions: Actions | None, unavailable: str | None = None) -> list[Route]:
    """The action endpoints; without actions, the same paths answer why not: 404 when the config leaves
    them off, 503 when they are configured but cannot run (`unavailable` says why)."""
    if actions is None:
        status, why = (
            (404, "actions are disabled (set actions.enabled)")
            if unavailable is None
            else (
                503,
                f"actions are unavailable: {unavailable}",
            )
        )

        async def disabled(request: Request) -> Response:
            return JSONResponse({"error": why}, status_code=status)

        return [Route(path, disabled, methods=list(methods)) for path, methods in (*PATHS, *DECISION_PATHS)]
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
                refuse,
                actions,
                source,
                "unauthorized",
                401,
                "missing or wrong bearer token",
                remote=remote(request),
                plan_ref=plan_ref,
            )
            return unauthorized(d.to_json())
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
                refuse,
                actions,
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
                refuse,
                actions,
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
            return unauthorized()
        try:
            limit_n = min(200, max(1, int(request.query_params.get("limit", "50"))))
        except ValueError:
            return JSONResponse({"error": "limit must be a number"}, status_code=400)
        # a starter sees its own decisions; every other role sees everyone's (keys, plans, reasons)
        mine = caller.name if set(caller.roles) <= {"starter"} else None
        shown = actions.recent(limit_n, mine)
        if caller.plans is not None:  # a restricted caller learns no more of a plan than a 403 says
            hidden = {"plan", "plan_id", "backup_server"}
            shown = [
                {k: v for k, v in r.items() if k not in hidden} if r.get("outcome") == "forbidden" else r
                for r in shown
            ]
        return JSONResponse({"actions": shown})

    handlers = {"start": start, "alertmanager": webhook, "actions": recent}
    own = [Route(path, handlers[path.split("/")[-1]], methods=list(methods)) for path, methods in PATHS]
    return [*own, *decision_routes(actions)]


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
            ignored = StartRequest(
                plan_ref=plan or "", source="alertmanager", remote=remote, alert_fingerprint=alert.fingerprint
            )
            actions.ignored(ignored, caller, reason)
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
                alert={k[:100]: v[:200] for k, v in list(alert.labels.items())[:30]},
            ),
        )
        decisions.append(d)
        results.append({"fingerprint": alert.fingerprint, **d.to_json()})
    if any(d.status >= 500 for d in decisions):
        return results, 503
    if decisions and all(d.status >= 400 for d in decisions):
        return results, max(d.status for d in decisions)
    return results, 202 if any(d.outcome == "accepted" for d in decisions) else 200


def refuse(
    actions: Actions,
    source: str,
    outcome: Outcome,
    status: int,
    reason: str,
    *,
    caller: Caller | None = None,
    remote: str = "",
    plan_ref: str | None = None,
    fingerprint: str | None = None,
) -> Decision:
    """Record a request turned away before its checks could run (bad token, bad body, ...)."""
    req = StartRequest(
        plan_ref=plan_ref or "",
        source="alertmanager" if source == "alertmanager" else "api",
        remote=remote,
        alert_fingerprint=fingerprint,
    )
    return actions.refuse(req, caller, outcome, status, reason)
