"""The exporter's settings, as typed values: each field with its kind and default (and, for numbers, its
minimum) declared once, here (fields.py). load.py reads them from YAML, the environment and flags."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, get_args

from exporter.config.fields import ConfigError, choice, flag, number, text
from exporter.secret import Secret


@dataclass(frozen=True)
class EMSettings:
    url: str
    username: str
    password: Secret = field(repr=False)
    ca_file: str | None = text()
    insecure_skip_verify: bool = flag(False)
    timeout_seconds: float = number(30.0, minimum=0.1)
    page_size: int = number(100, minimum=1)
    max_body_bytes: int = number(64 * 1024 * 1024, minimum=1024)


@dataclass(frozen=True)
class CollectSettings:
    """Asking EM to collect from a backup server while a failover runs there (polling/collections.py).

    A real EM shows what it last collected from each backup server, every 15 minutes by default: without
    this, a failover's progress on /metrics can be that old whatever the poll interval. Each collection
    costs EM and the backup server a data collection (seconds to minutes at scale), so it is off by
    default, only asked for servers with a failover running (or just started here), at most one in
    flight per server, and never sooner than interval_seconds after the last."""

    enabled: bool = flag(False)
    interval_seconds: float = number(60.0, minimum=30)
    # after this exporter started a plan, its backup server is collected this long even before the
    # new session shows (EM shows it only once it collected it)
    after_start_seconds: float = number(1800.0, minimum=0)
    # EM refused (403: the account's role may not collect): ask that server again only after this
    refused_pause_seconds: float = number(3600.0, minimum=60)
    # a collection not finished by then is given up (counted as timeout); the next may be asked
    timeout_seconds: float = number(600.0, minimum=10)


@dataclass(frozen=True)
class PollSettings:
    active_interval_seconds: float = number(10.0, minimum=1)
    idle_interval_seconds: float = number(60.0, minimum=1)
    # How far back each poll looks for new sessions. EM learns of sessions from its backup servers
    # every 15 minutes by default, so a session can appear with a CreationTime that far in the past.
    session_lookback_seconds: float = number(1800.0, minimum=0)
    # the first poll looks this far back for each plan's latest session
    history_seconds: float = number(30 * 86400.0, minimum=60)
    # Session queries ask this much further back than needed, then filter exactly on CreationTimeUTC:
    # before 13.x EM does not document whether a DateTime filter value is UTC or the server's local
    # time, and UTC offsets reach 14 h. 0 trusts the server to read UTC.
    filter_time_slack_seconds: float = number(14 * 3600.0, minimum=0)
    max_backoff_seconds: float = number(300.0, minimum=1)
    # While EM cannot be read, the last known failover data stays on /metrics and /status (its age is
    # time() - veeam_em_last_successful_poll_timestamp_seconds): a failover alert must not resolve because
    # EM is down. > 0: after this long it is left out instead; 0 (the default): it stays.
    stale_after_seconds: float = number(0.0, minimum=0)
    # Replica points are read once each, in queries of 80, at most this many a poll, fewer when the poll
    # also counts sessions or reads plans: 2 keeps a poll within ceil(sessions / page size) + 2
    # requests. Until a point is read, its time comes from its name.
    point_queries_per_poll: int = number(2, minimum=1)
    # A plan's latest session whose query answer carries no VM tasks (EM may leave them out of finished
    # sessions, or out of every query answer) is read as an entity: a running one each poll, a finished
    # one once; at most this many a poll, on top of the poll's other requests.
    session_reads_per_poll: int = number(4, minimum=0)
    # Plans are re-read this often (and at once when a new session names a plan not known yet).
    plans_refresh_seconds: float = number(60.0, minimum=1)
    max_concurrent_requests: int = number(4, minimum=1)
    collect: CollectSettings = field(default_factory=CollectSettings)


@dataclass(frozen=True)
class ReadinessSettings:
    """Readiness before the disaster (readiness/reader.py): each plan VM's newest replica point, read
    newest first; then only what is newer, every interval_seconds, in a loop of its own."""

    enabled: bool = flag(True)
    # the recovery point objective: a plan VM whose newest point is older than this is at risk.
    # Mind EM's own lag: it shows a backup server's points as of its last collection (15 min by default).
    rpo_seconds: float = number(4 * 3600.0, minimum=60)
    # per plan (by name or ID): its own RPO
    plan_rpo_seconds: tuple[tuple[str, float], ...] = ()
    interval_seconds: float = number(300.0, minimum=5)
    # how late EM shows a backup server's new points at most: its collection interval (15 minutes by
    # default) and a collection's duration. A read pages back at most this far past the last read.
    collection_lag_seconds: float = number(1200.0, minimum=0)
    # and this much further, for points a replication job dated when it processed the VM but finished
    # (and EM collected) later; 0: such a point is found once its VM's age passes its RPO (checks by name)
    lag_margin_seconds: float = number(0.0, minimum=0)
    # the query service's pages a read may ask for (the first read goes on at once where it stopped)
    pages_per_read: int = number(50, minimum=1)
    # VMs with no point or one older than their RPO are asked for by name, this many a read at most,
    # each again after recheck_seconds: the only way to tell "never replicated" from "not read yet"
    checks_per_read: int = number(20, minimum=0)
    recheck_seconds: float = number(900.0, minimum=10)

    def rpo_for(self, plan_name: str, plan_id: str) -> float:
        for key, rpo in self.plan_rpo_seconds:
            if key in (plan_name, plan_id):
                return rpo
        return self.rpo_seconds


# An allowlist entry: a plan name or ID (a bare name matches that name on any backup server), or
# (backup server, plan name or ID) to name one server's plan only.
PlanEntry = str | tuple[str, str]
# starter: asks for starts; approver: approves or rejects others' starts (approval mode); admin: flips the
# runtime switches; viewer: reads decisions. Reading everyone's decisions takes any role but starter.
ROLES = ("starter", "approver", "admin", "viewer")
APPROVAL_MODES = ("none", "required")
NOTIFICATION_FORMATS = ("json", "slack")
# The events a notification webhook may be told of: every decision that matters; em_unknown is a start
# whose answer was lost (it may have happened).
Announced = Literal[
    "pending", "approved", "rejected", "expired", "accepted", "dry_run", "em_error", "em_unknown", "switches"
]
ANNOUNCED: tuple[Announced, ...] = get_args(Announced)
LOG_LEVELS = ("debug", "info", "warning", "error")
LOG_FORMATS = ("text", "json")


@dataclass(frozen=True)
class Caller:
    """Who may call the action endpoints: a name for the audit log, a bearer token, and its plans."""

    name: str
    token: Secret = field(repr=False)
    plans: tuple[PlanEntry, ...] | None = None  # None: the global actions.allowed_plans
    roles: tuple[str, ...] = ("starter",)


@dataclass(frozen=True)
class NotificationTarget:
    """A webhook told of every decision that matters (actions/announce.py). Its URL is a secret: a Slack
    webhook URL is the credential itself."""

    name: str
    url: Secret = field(repr=False)
    # or "slack": {"text": ...}, which Slack, Mattermost and Rocket.Chat accept
    format: str = choice("json", NOTIFICATION_FORMATS)
    events: tuple[str, ...] | None = None  # None: every announced event
    ca_file: str | None = text()
    timeout_seconds: float = number(5.0, minimum=0.1)
    max_attempts: int = number(5, minimum=1)
    retry_base_seconds: float = number(2.0, minimum=0.01)  # doubled after each failed attempt


@dataclass(frozen=True)
class ActionSettings:
    enabled: bool = flag(False)
    kill_switch: bool = flag(False)  # refuse every start, whatever else says
    dry_run: bool = flag(False)  # run and record every check, send nothing to EM
    callers: tuple[Caller, ...] = ()
    allowed_plans: tuple[PlanEntry, ...] = ()  # plan names or IDs, or (backup server, name or ID)
    cooldown_seconds: float = number(3600.0, minimum=0)
    # Starts in any hour, across all plans: when a provider's own uplink fails, every tenant looks down at
    # once; past this every start is a conflict until the hour has passed, and an alert fires.
    max_starts_per_hour: int = number(3, minimum=1)
    # the same for each backup server; 0: only the global limit
    max_starts_per_hour_per_backup_server: int = number(0, minimum=0)
    audit_log: str | None = text()
    # keys of requests that started nothing (withdrawn, rejected, expired) are forgotten after this
    # (longer than Alertmanager's repeat_interval, 4 h by default); keys of starts never are
    idempotency_window_seconds: float = number(86400.0, minimum=3600)
    # pending decisions one caller may have at once (a flood of requests fills no memory)
    max_pending_per_caller: int = number(20, minimum=1)
    # past this size the audit log is kept as <name>.1 (three kept) and a new one begins with the state
    # the guards need (the used keys, each plan's last start)
    audit_log_rotate_bytes: int = number(64 * 1024 * 1024, minimum=4096)
    alertmanager_plan_label: str = text("veeam_failover_plan")
    max_body_bytes: int = number(256 * 1024, minimum=1024)
    # How long a start's EM task is followed. EM reports OperationFinished until its next collection
    # from the backup server (15 minutes by default), so this covers one collection and some.
    task_timeout_seconds: float = number(1200.0, minimum=1)
    task_poll_interval_seconds: float = number(2.0, minimum=0.05)
    # plan name or ID -> fail over to a point at least this old (ransomware recovery), instead of the latest
    restore_point_min_age_seconds: dict[str, float] = field(default_factory=dict)
    # "required": a start that passes every guard waits for an approver (not the requester) first
    approval: str = choice("none", APPROVAL_MODES)
    plan_approval: dict[str, str] = field(default_factory=dict)  # plan name or ID -> "none" | "required"
    approval_timeout_seconds: float = number(1800.0, minimum=1)  # a pending decision expires after this
    notifications: tuple[NotificationTarget, ...] = ()
    # where people reach this exporter (links in notifications), e.g. https://veeam-exporter.example.com
    external_url: str | None = text()


@dataclass(frozen=True)
class WebSettings:
    """The exporter's own listener (in the spirit of Prometheus' web.config): optional TLS, and optional
    basic or bearer auth on everything but the probes (/healthz, /readyz) and the action endpoints,
    which have their own tokens."""

    tls_cert_file: str | None = text()
    tls_key_file: str | None = text()
    basic_username: str | None = None
    basic_password: Secret | None = field(default=None, repr=False)
    bearer_token: Secret | None = field(default=None, repr=False)
    # limits on every client, token or not (http/listener.py)
    header_timeout_seconds: float = number(10.0, minimum=0.1)
    # a whole request body, from the end of its head (a trickled body holds no connection for long)
    body_timeout_seconds: float = number(10.0, minimum=0.1)
    # a kept-alive connection with no request: closed after this (Prometheus at 15-30 s keeps its own)
    idle_timeout_seconds: int = number(35, minimum=1)
    max_header_bytes: int = number(32 * 1024, minimum=1024)
    max_connections: int = number(512, minimum=1)
    # open connections one client address may hold (trusted proxies are exempt): no one address can
    # take the listener
    max_connections_per_client: int = number(64, minimum=1)
    # X-Forwarded-For is believed only from these addresses (a reverse proxy in front); none by default
    trusted_proxies: tuple[str, ...] = ()


@dataclass(frozen=True)
class Config:
    em: EMSettings
    poll: PollSettings = field(default_factory=PollSettings)
    actions: ActionSettings = field(default_factory=ActionSettings)
    readiness: ReadinessSettings = field(default_factory=ReadinessSettings)
    web: WebSettings = field(default_factory=WebSettings)
    listen_address: str = text("0.0.0.0:9849")
    log_level: str = choice("info", LOG_LEVELS)
    log_format: str = choice("text", LOG_FORMATS)  # or "json": one JSON object a line
    # Parse EM's large answers and render large expositions in a second process (offload.py), started only
    # when an answer or a snapshot is that large (about 2,000 VMs): at 10,000 VMs /metrics gzip p99 is
    # 8-12 ms instead of 30-56 ms, and the exporter's memory with its helper stays under 200 MB
    # (docs/benchmarks.md). false: everything in one process.
    helper_process: bool = flag(True)

    @property
    def listen_host_port(self) -> tuple[str, int]:
        return parse_listen_address(self.listen_address)


def parse_listen_address(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ConfigError(f"listen_address: must be host:port (e.g. 0.0.0.0:9849), got {value!r}")
    return (host.strip("[]") or "0.0.0.0"), int(port)  # noqa: S104 - an exporter listens for Prometheus
