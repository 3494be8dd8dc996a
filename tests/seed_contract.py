"""The metric contract for the seed scenario (the documentation's own example session), value by value:
the exporter must show exactly this against every EM profile."""

from __future__ import annotations

from typing import Any

import pytest

from exporter.config import PollSettings
from exporter.em.model import SESSION_RESULTS, SESSION_STATES
from tests.helpers import Samples, series, utc, value

SEED_PLAN = {"backup_server": "srv13.tech.local", "plan": "ABC Company Failover Plan"}
LONG_HISTORY = PollSettings(history_seconds=20 * 365 * 86400.0)  # the seed's session is from 2020


def one_hot(
    samples: Any, name: str, label: str, documented: tuple[str, ...], **labels: str
) -> dict[str, float]:
    got = {v: value(samples, name, **labels, **{label: v}) for v in documented}
    assert None not in got.values(), f"{name}: missing documented series in {got}"
    return {k: v for k, v in got.items() if v}


def assert_seed_contract(m: Samples) -> None:
    assert value(m, "veeam_em_up") == 1
    assert (
        value(
            m,
            "veeam_failover_plan_info",
            **SEED_PLAN,
            plan_id="e7ca6822-a87f-443d-8aae-8005970543bf",
            tenant="ABC Company",
        )
        == 1
    )
    assert value(m, "veeam_failover_plan_vms", **SEED_PLAN) == 2
    assert (
        value(
            m, "veeam_failover_session_info", **SEED_PLAN, session_id="a986d473-0248-4884-9832-17ec982ee393"
        )
        == 1
    )
    assert one_hot(m, "veeam_failover_session_state", "state", SESSION_STATES, **SEED_PLAN) == {"Working": 1}
    assert one_hot(m, "veeam_failover_session_result", "result", SESSION_RESULTS, **SEED_PLAN) == {"None": 1}
    assert value(m, "veeam_failover_session_progress_ratio", **SEED_PLAN) == 0
    assert value(m, "veeam_failover_session_start_timestamp_seconds", **SEED_PLAN) == pytest.approx(
        utc("2020-05-06T20:29:45") + 0.077, abs=1e-3
    )
    assert series(m, "veeam_failover_session_end_timestamp_seconds") == {}  # not ended
    f3, f4 = {**SEED_PLAN, "vm": "filesrv03"}, {**SEED_PLAN, "vm": "filesrv04"}
    assert one_hot(m, "veeam_failover_vm_state", "state", SESSION_STATES, **f3) == {"Working": 1}
    assert one_hot(m, "veeam_failover_vm_state", "state", SESSION_STATES, **f4) == {"Starting": 1}
    assert one_hot(m, "veeam_failover_vm_result", "result", SESSION_RESULTS, **f3) == {"None": 1}
    assert one_hot(m, "veeam_failover_vm_result", "result", SESSION_RESULTS, **f4) == {"None": 1}
    assert value(m, "veeam_failover_vm_progress_ratio", **f3) == 0
    assert value(m, "veeam_failover_vm_progress_ratio", **f4) == 0
    assert value(m, "veeam_failover_vm_start_timestamp_seconds", **f3) == pytest.approx(
        utc("2020-05-06T20:29:50") + 0.13, abs=1e-3
    )
    assert value(m, "veeam_failover_vm_start_timestamp_seconds", **f4) == pytest.approx(
        utc("2020-05-06T20:29:50") + 0.14, abs=1e-3
    )
    assert series(m, "veeam_failover_vm_end_timestamp_seconds") == {}
    assert value(m, "veeam_failover_vm_restore_point_timestamp_seconds", **f3) == utc("2020-02-13T05:00:46")
    assert value(m, "veeam_failover_vm_restore_point_timestamp_seconds", **f4) == utc("2020-02-13T06:02:20")
    assert value(m, "veeam_failover_exporter_build_info", version="0.1.0") == 1
    assert value(m, "veeam_em_logons_total") == 1
    assert not any(name.endswith("_created") for name, _ in m)
