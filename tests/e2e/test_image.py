"""The image, built for real from the Dockerfile with podman, and the exporter run from the image's own files
as uid 65532 against the simulator on loopback.

The base is Debian 12 made here with debootstrap from this machine's configured Debian mirror (the
Dockerfile's default, the official Python image, is pulled by users); the wheels are built on the host
(scripts/build-image), so the build needs no network. podman cannot start containers on this kind of
machine (setrlimit is refused), so the image's filesystem is mounted (`podman image mount`) and its
entrypoint, from the image's own config, run in it with `chroot --userspec=65532:65532`.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests import plain_http
from tests.helpers import parse_samples, running_sim, value
from tests.procs import missing

ROOT = Path(__file__).parents[2]
BASE = "localhost/veeam-failover-exporter-base:bookworm"
TAG = "localhost/veeam-failover-exporter:test"


def missing_tools() -> str | None:
    if os.geteuid() != 0:
        return "building and mounting images with podman here needs root"
    for tool in ("podman", "debootstrap", "chroot"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (scripts/setup --test installs it on Debian)"
    return None


def debian_mirror() -> str:
    """The machine's configured Debian mirror (deb822 sources first, then sources.list)."""
    sources = Path("/etc/apt/sources.list.d/debian.sources")
    if sources.is_file():
        for line in sources.read_text().splitlines():
            if line.startswith("URIs:") and "security" not in line:
                return line.split()[1]
    listing = Path("/etc/apt/sources.list")
    if listing.is_file():
        for line in listing.read_text().splitlines():
            parts = line.split()
            if parts[:1] == ["deb"] and "security" not in line:
                return next(p for p in parts[1:] if "://" in p)
    return "http://deb.debian.org/debian"


def podman(*args: str, capture: bool = True) -> str:
    done = subprocess.run(["podman", *args], capture_output=capture, text=True, check=False)
    assert done.returncode == 0, f"podman {' '.join(args)}: {done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def image() -> Iterator[tuple[Path, dict[str, Any]]]:
    reason = missing_tools()
    if reason is not None:
        missing(reason)
    if subprocess.run(["podman", "image", "exists", BASE], check=False).returncode != 0:
        with tempfile.TemporaryDirectory() as tmp:
            rootfs = Path(tmp) / "rootfs"
            subprocess.run(
                [
                    "debootstrap",
                    "--variant=minbase",
                    "--include=python3,python3-venv",
                    "bookworm",
                    str(rootfs),
                    debian_mirror(),
                ],
                check=True,
                capture_output=True,
            )
            tar = subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE)
            done = subprocess.run(
                ["podman", "import", "-", BASE], stdin=tar.stdout, capture_output=True, check=False
            )
            tar.wait()
            assert done.returncode == 0, done.stderr
    build = subprocess.run(
        [str(ROOT / "scripts" / "build-image"), TAG, "podman", BASE],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    config = json.loads(podman("image", "inspect", TAG))[0]["Config"]
    mount = Path(podman("image", "mount", TAG).strip())
    try:
        yield mount, config
    finally:
        podman("image", "unmount", TAG)


def test_the_image_is_configured_to_run_as_65532_with_its_entrypoint(
    image: tuple[Path, dict[str, Any]],
) -> None:
    mount, config = image
    assert config["User"] == "65532:65532"
    assert config["Entrypoint"] == ["veeam-failover-exporter"]
    assert config["Cmd"] == ["run", "--config", "/etc/veeam-failover-exporter/config.yaml"]
    assert (mount / "opt/veeam-failover-exporter/bin/veeam-failover-exporter").is_file()
    assert not any((mount / "usr/bin").glob("gcc*"))  # no build tools: the wheels came in built
    state = (mount / "var/lib/veeam-failover-exporter").stat()
    assert (state.st_uid, state.st_gid) == (65532, 65532)


def test_metrics_are_served_from_the_image_own_files_as_uid_65532(
    image: tuple[Path, dict[str, Any]],
) -> None:
    mount, config = image
    env = dict(e.split("=", 1) for e in config["Env"])
    with running_sim("demo") as sim:
        sim.clock.now = time.time()
        port = free_port()
        env |= {
            "VEEAM_EM_URL": sim.url,
            "VEEAM_EM_USERNAME": "admin",
            "VEEAM_EM_PASSWORD": "admin",
            "VEEAM_EXPORTER_LISTEN_ADDRESS": f"127.0.0.1:{port}",
        }
        # the image's entrypoint, without the config file its default command names (settings from the
        # environment instead), as the image's user, in the image's files
        chroot = shutil.which("chroot")  # on the host's PATH; the image's PATH is in env
        assert chroot is not None
        cmd = [chroot, "--userspec=65532:65532", str(mount), *config["Entrypoint"], "run"]
        proc = subprocess.Popen(cmd, env=env, cwd="/", stderr=subprocess.PIPE, text=True)
        try:
            m = wait_for_metrics(f"http://127.0.0.1:{port}", proc)
            status = Path(f"/proc/{proc.pid}/status").read_text()
            uids = next(line.split()[1:] for line in status.splitlines() if line.startswith("Uid:"))
            root = os.readlink(f"/proc/{proc.pid}/root")
            exe = os.readlink(f"/proc/{proc.pid}/exe")
        finally:
            proc.terminate()
            proc.wait(timeout=15)
    assert uids == ["65532"] * 4
    # the image's own Python (Debian's, in the image's files), not the host's
    assert Path(root) == mount and exe.startswith(f"{mount}/usr/bin/python3")
    assert value(m, "veeam_em_up") == 1
    assert (
        value(
            m, "veeam_failover_plan_vms", backup_server="vbr01.example.local", plan="ACME full site failover"
        )
        == 5
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_metrics(url: str, proc: subprocess.Popen[str]) -> Any:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"the exporter in the image exited: {proc.stderr.read() if proc.stderr else ''}")
        try:
            m = parse_samples(plain_http.get(url + "/metrics", timeout=5).text)
            if value(m, "veeam_em_up") == 1:
                return m
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    pytest.fail("the exporter in the image never read EM")
