"""Each vocabulary has one source in the code; the documentation must name every value of it."""

from __future__ import annotations

from pathlib import Path

from exporter.actions.model import AUDIT_NOTES, OUTCOMES, SOURCES
from exporter.em.errors import REASONS

ROOT = Path(__file__).parents[2]


def _row(doc: str, metric: str) -> str:
    return next(line for line in doc.splitlines() if line.startswith(f"| `{metric}`"))


def test_the_readme_names_every_error_reason() -> None:
    row = _row((ROOT / "README.md").read_text(), "veeam_em_poll_errors_total")
    assert [r for r in REASONS if r not in row] == []


def test_the_readme_names_every_start_outcome_and_source() -> None:
    row = _row((ROOT / "README.md").read_text(), "veeam_failover_start_requests_total")
    assert [o for o in (*OUTCOMES, *SOURCES) if o not in row] == []


def test_the_actions_doc_names_every_audit_note() -> None:
    doc = (ROOT / "docs" / "actions.md").read_text()
    assert [n for n in AUDIT_NOTES if f"`{n}`" not in doc] == []
