"""Large answers are parsed, and large expositions rendered, in a helper process: the same bytes as
inline, and a dead helper costs nothing but a restart. (Thresholds set to 0 so small data goes there.)"""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from prometheus_client.exposition import choose_encoder

from exporter.config import Config
from exporter.metrics.offload import Offload
from tests import plain_http
from tests.helpers import exporter_config, running_exporter, running_sim, value

SCENARIO = {
    "time_scale": 1,
    "plans": [
        {
            "name": f"Tenant {p} plan",
            "backup_server": "vbr01",
            "start_at_seconds": 0,
            "vms": [{"name": f"vm-{p}-{v}", "duration_seconds": 100} for v in range(3)],
        }
        for p in range(3)
    ],
}
OPENMETRICS = "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5"


def helper_config(url: str) -> Config:
    return dataclasses.replace(exporter_config(url), helper_process=True)


def without_process_lines(body: bytes) -> list[bytes]:
    # the process_* families (CPU, memory) move between two renderings
    return [line for line in body.splitlines() if b"process_" not in line]


def test_helper_process_renders_the_same_exposition_as_inline() -> None:
    with running_sim(SCENARIO) as sim, running_exporter(helper_config(sim.url)) as exp:
        offload = exp.exporter.offload
        assert offload is not None
        offload.parse_min_bytes = offload.render_min_tasks = 0
        sim.clock.advance(30)
        exp.poll()
        assert offload.jobs >= 3  # the plans, a page of sessions, the replica points
        for accept in (OPENMETRICS, "text/plain"):
            before = offload.jobs
            via_helper = plain_http.get(exp.url + "/metrics", headers={"Accept": accept}).content
            assert offload.jobs == before + 1
            encoder, _ = choose_encoder(accept)
            inline = encoder(exp.exporter.registry)
            assert without_process_lines(via_helper) == without_process_lines(inline)
        m = exp.scrape()
        helper = offload.helper_pid
    assert helper is not None and not alive(helper)  # shutdown stopped the helper
    plan = {"backup_server": "vbr01", "plan": "Tenant 1 plan"}
    assert value(m, "veeam_failover_vm_state", **plan, vm="vm-1-0", state="Working") == 1
    assert value(m, "veeam_failover_vm_state", **plan, vm="vm-1-1", state="Starting") == 1
    assert value(m, "veeam_em_up") == 1


def test_a_dead_helper_is_replaced_and_nothing_is_lost() -> None:
    with running_sim(SCENARIO) as sim, running_exporter(helper_config(sim.url)) as exp:
        offload = exp.exporter.offload
        assert offload is not None
        offload.parse_min_bytes = offload.render_min_tasks = 0
        exp.poll()
        helper = offload.helper_pid
        assert helper is not None
        os.kill(helper, signal.SIGKILL)  # e.g. the kernel's OOM killer
        time.sleep(0.5)
        sim.clock.advance(30)
        exp.poll()  # the first job finds the helper dead and runs inline; the next starts a new helper
        m = exp.scrape()
        assert offload.restarts == 1
        assert offload.helper_pid is not None and offload.helper_pid != helper
    assert value(m, "veeam_em_up") == 1
    vm = {"backup_server": "vbr01", "plan": "Tenant 0 plan", "vm": "vm-0-0"}
    assert value(m, "veeam_failover_vm_state", **vm, state="Working") == 1


def test_a_parse_error_in_the_helper_is_counted_like_one_inline() -> None:
    with running_sim(SCENARIO) as sim, running_exporter(helper_config(sim.url)) as exp:
        assert exp.exporter.offload is not None
        exp.exporter.offload.parse_min_bytes = 0
        sim.world.faults.update({"truncate": True})
        exp.poll()
        m = exp.scrape()
    assert value(m, "veeam_em_up") == 0
    assert value(m, "veeam_em_poll_errors_total", reason="parse") == 1


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie (exited, not yet reaped by its parent) counts as gone
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"


ORPHAN = """
import os, sys
from exporter.config import Config
from exporter.metrics.offload import Offload
offload = Offload(parse_min_bytes=0)
assert offload.run(sorted, [2, 1]) == [1, 2]
print(offload.helper_pid, flush=True)
os._exit(0)  # as if killed: no shutdown, no cleanup
"""


def test_the_helper_exits_when_the_exporter_is_killed() -> None:
    proc = subprocess.run(
        [sys.executable, "-c", ORPHAN], capture_output=True, text=True, timeout=60, check=True
    )
    helper = int(proc.stdout.split()[0])
    deadline = time.monotonic() + 10
    while alive(helper) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not alive(helper)


def test_a_closed_offload_runs_inline() -> None:
    offload = Offload(parse_min_bytes=0)
    offload.close()
    assert offload.run(sorted, [3, 1, 2]) == [1, 2, 3]
    assert offload.jobs == 0


def test_a_small_installation_never_starts_the_helper() -> None:
    with running_sim(SCENARIO) as sim, running_exporter(exporter_config(sim.url)) as exp:
        exp.poll()
        assert exp.exporter.offload is not None and exp.exporter.offload.helper_pid is None  # by default
        assert value(exp.scrape(), "veeam_em_up") == 1
    off = dataclasses.replace(exporter_config(sim.url), helper_process=False)
    with running_sim(SCENARIO) as sim, running_exporter(off) as exp:
        exp.poll()
        assert exp.exporter.offload is None
