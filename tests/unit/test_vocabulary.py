"""Each vocabulary has one source in the code; the documentation must name every value of it."""

from __future__ import annotations

from pathlib import Path

from exporter.actions.announce import RESULTS
from exporter.actions.model import AUDIT_NOTES, OUTCOMES, SOURCES, VERDICTS
from exporter.config import ROLES
from exporter.config.model import ANNOUNCED
from exporter.em.errors import REASONS
from exporter.polling.collections import COLLECTION_OUTCOMES

ROOT = Path(__file__).parents[2]


def _row(doc: str, metric: str) -> str:
    return next(line for line in doc.splitlines() if line.startswith(f"| `{metric}`"))


def test_the_metrics_doc_names_every_error_reason() -> None:
    row = _row((ROOT / "docs" / "metrics.md").read_text(), "veeam_em_poll_errors_total")
    assert [r for r in REASONS if r not in row] == []


def test_the_metrics_doc_names_every_start_outcome_and_source() -> None:
    row = _row((ROOT / "docs" / "metrics.md").read_text(), "veeam_failover_start_requests_total")
    assert [o for o in (*OUTCOMES, *SOURCES) if o not in row] == []


def test_the_actions_doc_names_every_audit_note() -> None:
    doc = (ROOT / "docs" / "actions.md").read_text()
    assert [n for n in AUDIT_NOTES if f"`{n}`" not in doc] == []


def test_the_metrics_doc_names_every_verdict_and_notification_result() -> None:
    doc = (ROOT / "docs" / "metrics.md").read_text()
    assert [v for v in VERDICTS if v not in _row(doc, "veeam_failover_decisions_pending")] == []
    assert [r for r in RESULTS if r not in _row(doc, "veeam_failover_notifications_total")] == []


def test_the_actions_doc_names_every_role_and_announced_event() -> None:
    doc = (ROOT / "docs" / "actions.md").read_text()
    assert [r for r in ROLES if f"`{r}`" not in doc] == []
    assert [a for a in ANNOUNCED if f"`{a}`" not in doc] == []


def test_the_metrics_doc_names_every_collection_outcome() -> None:
    row = _row((ROOT / "docs" / "metrics.md").read_text(), "veeam_em_collections_total")
    assert [o for o in COLLECTION_OUTCOMES if o not in row] == []
