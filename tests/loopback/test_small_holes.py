"""The smaller holes of the third hardening round: line separators in text logs, a caller named twice in
the tokens file, and a restricted caller that could tell "not yours" from "no such plan"."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from exporter.config import ConfigError
from exporter.config.load import build_config
from exporter.logs import escape
from tests import plain_http
from tests.loopback.test_actions import ACME, LIMITED_TOKEN, env


def test_line_and_paragraph_separators_never_reach_a_text_log_raw() -> None:
    forged = "plan\u2028INFO forged line\u2029\u202eevil"
    out = escape(forged)
    assert "\u2028" not in out and "\u2029" not in out and "\u202e" not in out
    assert out == "plan\\u2028INFO forged line\\u2029\\u202eevil"


def test_the_text_log_escapes_them_in_a_real_record(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="exporter")
    with env(tmp_path) as e:
        e.start("x\u2028FORGED INFO line")
    from exporter.logs import _TextFormatter

    formatted = [_TextFormatter().format(r) for r in caplog.records]
    assert formatted and not any("\u2028" in line for line in formatted)


@pytest.mark.parametrize(
    "tokens",
    [
        "alice: token-aaaaaaaaaaaaaaaaaaaaaa\nalice: token-bbbbbbbbbbbbbbbbbbbbbb\n",
        "1: token-aaaaaaaaaaaaaaaaaaaaaa\n'1': token-bbbbbbbbbbbbbbbbbbbbbb\n",
    ],
)
def test_a_caller_named_twice_in_the_tokens_file_is_refused(tmp_path: Path, tokens: str) -> None:
    (tmp_path / "tokens.yaml").write_text(tokens)
    config = {
        "em": {"url": "https://em", "username": "u"},
        "actions": {
            "enabled": True,
            "tokens_file": str(tmp_path / "tokens.yaml"),
            "audit_log": str(tmp_path / "a"),
        },
    }
    with pytest.raises(ConfigError, match="given twice"):
        build_config(config, {}, {"VEEAM_EM_PASSWORD": "pw"})


def test_a_restricted_caller_cannot_tell_not_allowed_from_no_such_plan(tmp_path: Path) -> None:
    with env(tmp_path) as e:
        theirs = e.start(ACME, token=LIMITED_TOKEN)  # exists, not allowed
        nothing = e.start("no such plan at all", token=LIMITED_TOKEN)
        assert theirs.status_code == nothing.status_code == 403
        assert theirs.json()["reason"] == nothing.json()["reason"]
        assert set(theirs.json()) == set(nothing.json()) == {"request_id", "outcome", "reason"}
        listed = plain_http.get(
            f"{e.exp.url}/api/v1/actions", headers={"Authorization": f"Bearer {LIMITED_TOKEN}"}, timeout=10
        ).json()["actions"]
        assert len(listed) == 2
        for record in listed:
            assert "plan_id" not in record and "backup_server" not in record and "plan" not in record
