"""Real Prometheus and Alertmanager (Debian's packages), started by the tests on free loopback ports."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn

import httpx
import pytest
import yaml

from tests import plain_http


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def binary(name: str) -> str:
    path = shutil.which(name)
    assert path, (
        f"{name} is missing: scripts/setup --test installs Debian's prometheus and prometheus-alertmanager"
    )
    return path


def check_rules(groups: list[dict[str, Any]], tmp: Path) -> None:
    """`promtool check rules` on these rule groups: they must load in a real Prometheus."""
    (tmp / "rules.yml").write_text(yaml.safe_dump({"groups": groups}))
    done = subprocess.run(
        [binary("promtool"), "check", "rules", str(tmp / "rules.yml")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def wait_ready(ready_url: str, proc: subprocess.Popen[bytes], log: Path, timeout: float = 30) -> None:
    """Until `ready_url` answers 200; fails with the process's log if it exits or takes too long."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if plain_http.get(ready_url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        assert proc.poll() is None, f"{proc.args!r} exited: {log.read_text()[-2000:]}"
        assert time.monotonic() < deadline, f"{ready_url} not ready: {log.read_text()[-2000:]}"
        time.sleep(0.1)


@contextmanager
def _process(args: list[str], ready_url: str, log: Path) -> Iterator[str]:
    with log.open("wb") as out:
        proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT)
        try:
            wait_ready(ready_url, proc, log)
            yield ready_url.rsplit("/-/", 1)[0]
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@contextmanager
def prometheus(tmp: Path, config: dict[str, Any], rule_files: dict[str, Any] | None = None) -> Iterator[str]:
    """Prometheus with this config (and these rule files, by name); yields its base URL."""
    tmp.mkdir(parents=True, exist_ok=True)
    for name, rules in (rule_files or {}).items():
        (tmp / name).write_text(rules if isinstance(rules, str) else yaml.safe_dump(rules))
    (tmp / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    args = [
        binary("prometheus"),
        f"--config.file={tmp / 'prometheus.yml'}",
        f"--storage.tsdb.path={tmp / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
    ]
    with _process(args, f"http://127.0.0.1:{port}/-/ready", tmp / "prometheus.log") as url:
        yield url


@contextmanager
def alertmanager(tmp: Path, config: dict[str, Any]) -> Iterator[str]:
    tmp.mkdir(parents=True, exist_ok=True)
    (tmp / "alertmanager.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    args = [
        binary("prometheus-alertmanager"),
        f"--config.file={tmp / 'alertmanager.yml'}",
        f"--storage.path={tmp / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--cluster.listen-address=",
    ]
    with _process(args, f"http://127.0.0.1:{port}/-/ready", tmp / "alertmanager.log") as url:
        yield url


def missing(reason: str) -> NoReturn:
    """A tool or a privilege the test needs is not there: a skip on a developer's machine, a failure on
    CI (CI=true), where scripts/setup installs everything and a skip would hide a test that never ran."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI=true: a missing tool fails instead of skipping)")
    pytest.skip(reason)
