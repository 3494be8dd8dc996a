"""The /status page (http/status.py) and the failure messages EM gives (FailureMessage of a session and
of a VM task), as they reach /status and /metrics: over loopback HTTP against the simulator."""

from __future__ import annotations

import re
from typing import Any

from exporter.em.model import FAILURE_MESSAGE_CHARS, failure_text
from tests import plain_http
from tests.helpers import exporter_config, running_exporter, running_sim, series

SERVER = "vbr01"


def plan(name: str, *, start: bool = True, result: str = "Success", duration: int = 100) -> dict[str, Any]:
    vm = {"name": f"{name}-vm", "duration_seconds": duration, "result": result, "fail_at": 0.5}
    if result == "Failed":
        vm["failure_message"] = "Failed to power on replica:\n  host dr-esx02 has no free memory " + "x" * 300
    spec: dict[str, Any] = {"name": name, "backup_server": SERVER, "vms": [vm]}
    if start:
        spec["start_at_seconds"] = 0
    return spec


def test_failure_messages_reach_metrics_and_status_one_line_and_bounded() -> None:
    scenario = {"time_scale": 1, "plans": [plan("Broken", result="Failed"), plan("Fine")]}
    with running_sim(scenario) as sim, running_exporter(exporter_config(sim.url)) as exp:
        sim.clock.advance(30)
        exp.poll()
        assert series(exp.scrape(), "veeam_failover_vm_failure_info") == {}  # nothing failed yet
        sim.clock.advance(300)
        exp.poll()
        m = exp.scrape()
        vm_failures = series(m, "veeam_failover_vm_failure_info")
        assert len(vm_failures) == 1
        ((labels, one),) = vm_failures.items()
        message = dict(labels)["message"]
        assert one == 1 and dict(labels)["vm"] == "Broken-vm"
        assert message.startswith("Failed to power on replica: host dr-esx02 has no free memory")
        assert "\n" not in message and len(message) == FAILURE_MESSAGE_CHARS
        sessions = series(m, "veeam_failover_session_failure_info")
        assert [dict(k)["plan"] for k in sessions] == ["Broken"]
        assert dict(next(iter(sessions)))["message"] == "1 of 1 VMs failed to fail over (simulated)"
        page = plain_http.get(exp.url + "/status").text
        assert "EM says: 1 of 1 VMs failed to fail over (simulated)" in page
        assert failure_text(message)[:60] in page


def test_status_lists_the_worst_plans_first() -> None:
    scenario = {
        "time_scale": 1,
        "plans": [
            plan("A fine plan", start=False),
            plan("B running", duration=10_000),
            plan("C failed", result="Failed", duration=20),
        ],
    }
    with running_sim(scenario) as sim, running_exporter(exporter_config(sim.url)) as exp:
        sim.clock.advance(60)
        exp.poll()
        page = plain_http.get(exp.url + "/status").text
        plans_table = page.split("<h2>Plans</h2>", 1)[1].split("</table>", 1)[0]
        order = re.findall(r"(A fine plan|B running|C failed)", plans_table)
        assert order == ["C failed", "B running", "A fine plan"]
