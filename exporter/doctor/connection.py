"""The checks before EM is spoken to: the host name, the port, the TLS certificate."""

from __future__ import annotations

import socket
import ssl
import time
from datetime import UTC, datetime

from exporter.doctor.model import CERT_EXPIRY_WARN_DAYS, Check


def dns(host: str) -> Check:
    try:
        addresses = sorted({info[4][0] for info in socket.getaddrinfo(host, None)})
    except OSError as exc:
        return Check(
            "dns",
            "FAIL",
            f"cannot resolve {host!r}: {exc.strerror or exc}",
            "check em.url's host name",
        )
    return Check("dns", "OK", f"{host} -> {', '.join(str(a) for a in addresses[:4])}")


def tcp(host: str, port: int, timeout: float) -> Check:
    started = time.monotonic()
    try:
        with socket.create_connection((host, port), timeout=min(timeout, 10.0)):
            pass
    except OSError as exc:
        return Check(
            "tcp",
            "FAIL",
            f"cannot connect to {host}:{port}: {exc.strerror or exc}",
            "is EM running, and its REST API port (9398 since VBR 10) open from here?",
        )
    return Check("tcp", "OK", f"{host}:{port} answers ({(time.monotonic() - started) * 1000:.0f} ms)")


def tls(host: str, port: int, ca_file: str | None, insecure: bool, timeout: float) -> Check:
    if insecure:
        return Check(
            "tls",
            "WARN",
            "certificate not verified (em.insecure_skip_verify)",
            "set em.ca_file to the CA that signed EM's certificate instead",
        )
    ctx = ssl.create_default_context(cafile=ca_file) if ca_file else ssl.create_default_context()
    try:
        with (
            socket.create_connection((host, port), timeout=min(timeout, 10.0)) as raw,
            ctx.wrap_socket(raw, server_hostname=host) as tls_sock,
        ):
            cert = tls_sock.getpeercert() or {}
    except ssl.SSLCertVerificationError as exc:
        return Check(
            "tls",
            "FAIL",
            f"EM's certificate is not trusted: {exc.verify_message}",
            "set em.ca_file to the CA bundle that signed EM's certificate (EM's own self-signed "
            "certificate: export it from the EM server)",
        )
    except (ssl.SSLError, OSError) as exc:
        return Check("tls", "FAIL", f"TLS handshake failed: {exc}", "is this port EM's HTTPS port (9398)?")
    not_after = cert.get("notAfter")
    if not isinstance(not_after, str):
        return Check("tls", "OK", "certificate trusted")
    expires = ssl.cert_time_to_seconds(not_after)
    days = (expires - time.time()) / 86400
    when = datetime.fromtimestamp(expires, UTC).strftime("%Y-%m-%d")
    if days < CERT_EXPIRY_WARN_DAYS:
        return Check("tls", "WARN", f"certificate trusted, expires {when} ({days:.0f} days)", "renew it")
    return Check("tls", "OK", f"certificate trusted for {host}, expires {when}")
