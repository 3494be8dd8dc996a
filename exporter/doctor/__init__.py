"""`veeam-failover-exporter doctor`: first contact with a real EM, one check a line, each with what to do.

The checks run in the order a connection is made (name, port, TLS, API, logon, data), and a check
whose ground failed is skipped with the reason. Required checks decide the exit code; the others
(WARN) say what this EM does differently and how the exporter copes. Nothing secret is ever printed:
messages come from EMError, whose texts never hold the password or the token.
"""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import urlsplit

from exporter.config import Config
from exporter.doctor import connection, em_checks, permissions
from exporter.doctor.model import Check, Found, as_json, passed
from exporter.em.client import client_for

__all__ = ["Check", "as_json", "passed", "run_checks"]


def run_checks(config: Config) -> Iterator[Check]:
    em = config.em
    parts = urlsplit(em.url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)

    dns = connection.dns(host)
    yield dns
    if dns.status == "FAIL":
        return
    tcp = connection.tcp(host, port, em.timeout_seconds)
    yield tcp
    if tcp.status == "FAIL":
        return
    if parts.scheme == "https":
        tls = connection.tls(host, port, em.ca_file, em.insecure_skip_verify, em.timeout_seconds)
        yield tls
        if tls.status == "FAIL":
            return
    client = client_for(em)
    try:
        yield em_checks.api(client)
        logon = em_checks.logon(client, em.username)
        yield logon
        if logon.status == "FAIL":
            return
        found = Found()
        plans = em_checks.plans(client, found)
        yield plans
        if plans.status != "FAIL":
            yield from em_checks.queries(client, found)
            yield em_checks.data_age(found)
            yield permissions.may_start(client, found)
            yield permissions.may_collect(client, found)
        yield Check("token idle expiry", "SKIP", "not probed: EM ends an idle logon after 15 minutes")
        yield em_checks.logout(client)
    finally:
        client.close()
