"""TLS toward EM: verified by default, a CA file for private CAs, a clear message when it fails."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme

from exporter.http.server import ServerThread
from exporter.simulator import ManualClock, Simulator, World, load_scenario
from tests.helpers import exporter_config, running_exporter, value


@pytest.fixture
def tls_sim(tmp_path: Path) -> Iterator[tuple[str, Path, Path]]:
    """The seed scenario over HTTPS, its certificate from a private CA. Yields URL, CA file, other CA."""
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    cert.private_key_and_cert_chain_pem.write_to_path(str(tmp_path / "server.pem"))
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    trustme.CA().cert_pem.write_to_path(str(tmp_path / "other-ca.pem"))
    server = ServerThread(
        Simulator(World(load_scenario("seed"), clock=ManualClock())).app,
        certfile=str(tmp_path / "server.pem"),
        keyfile=str(tmp_path / "server.pem"),
    ).start()
    try:
        yield server.url, tmp_path / "ca.pem", tmp_path / "other-ca.pem"
    finally:
        server.stop()


def test_private_ca_via_ca_file(tls_sim: tuple[str, Path, Path]) -> None:
    url, ca, _ = tls_sim
    assert url.startswith("https://")
    with running_exporter(exporter_config(url, ca_file=str(ca))) as exp:
        exp.poll()
        assert value(exp.scrape(), "veeam_em_up") == 1


@pytest.mark.parametrize("which", ["system trust store", "wrong CA"])
def test_untrusted_certificate_fails_clearly(
    tls_sim: tuple[str, Path, Path], which: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    url, _, other = tls_sim
    em = {} if which == "system trust store" else {"ca_file": str(other)}
    with running_exporter(exporter_config(url, **em)) as exp:
        exp.poll()
        m = exp.scrape()
    assert value(m, "veeam_em_up") == 0
    assert value(m, "veeam_em_poll_errors_total", reason="tls") == 1
    assert "TLS verification failed" in caplog.text and "set em.ca_file" in caplog.text


def test_insecure_skip_verify_works_and_warns(
    tls_sim: tuple[str, Path, Path], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    url, _, _ = tls_sim
    with running_exporter(exporter_config(url, insecure_skip_verify=True)) as exp:
        exp.poll()
        assert value(exp.scrape(), "veeam_em_up") == 1
    assert "TLS verification of EM" in caplog.text and "is OFF" in caplog.text
