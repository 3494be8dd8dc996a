"""Announcements (exporter/actions/announce.py) under hostile words and floods: chat markup from reasons
and plan names is escaped, a request/withdraw flood becomes a summary, and starts, approvals and other
callers' pending decisions still go out."""

from __future__ import annotations

from pathlib import Path

from exporter.actions.announce import EVENTS_PER_WINDOW, slack_escape, slack_text
from exporter.config import NotificationTarget
from exporter.secret import Secret
from tests.helpers import value
from tests.loopback.test_actions import ACME, AM_TOKEN, GLOBEX, wait_until
from tests.loopback.test_approval import APPROVER, STARTER, env
from tests.receiver import running_receiver

HOSTILE = "<!channel> site down <https://evil.example/login|click here to approve> &amp; `x`"


def test_chat_markup_from_outside_is_escaped() -> None:
    text = slack_text(
        {
            "event": "pending",
            "plan": "<!here> ACME",
            "reason": HOSTILE,
            "links": {"status": "https://e/status"},
        }
    )
    assert "<!channel>" not in text and "<!here>" not in text and "<https://evil" not in text
    assert "&lt;!channel&gt;" in text and "&amp;amp;" in text
    assert text.endswith("<https://e/status|status>")  # our own link, from the config, stays a link
    assert slack_escape("a<b>&c") == "a&lt;b&gt;&amp;c"


def test_a_withdraw_flood_is_coalesced_and_real_events_still_go_out(tmp_path: Path) -> None:
    """Before the fix, 600 request/withdraw cycles sent 1,201 chat messages and then dropped real events."""
    with running_receiver(path="/services/T0/B0/secret") as chat:
        targets = (NotificationTarget("chat", Secret(chat.url), format="slack", retry_base_seconds=0.05),)
        with env(tmp_path, notifications=targets) as e:
            for _ in range(100):  # one caller floods one plan
                did = e.start(ACME, reason=HOSTILE).json()["request_id"]
                assert e.verdict(did, "reject", STARTER, reason="withdrawn").status_code == 200
            # another caller's pending decision, its approval and the start: each goes out
            real = e.start(GLOBEX, token=AM_TOKEN).json()["request_id"]
            assert e.verdict(real, "approve", APPROVER).json()["outcome"] == "accepted"
            wait_until(lambda: sum("*started*" in m["text"] for m in chat.received) == 1, 15)
            texts = [m["text"] for m in chat.received]
            assert len(texts) <= EVENTS_PER_WINDOW + 3, len(texts)
            assert any("waits for approval" in t and GLOBEX in t for t in texts)
            assert any("*approved*" in t for t in texts)
            assert not any("<!channel>" in t or "<https://evil" in t for t in texts)
            m = e.exp.scrape()
            coalesced = value(m, "veeam_failover_notifications_total", receiver="chat", result="coalesced")
            assert coalesced == 200 - EVENTS_PER_WINDOW
            assert value(m, "veeam_failover_notifications_total", receiver="chat", result="dropped") == 0
        # at shutdown the held events are told in one summary
        wait_until(lambda: any("held back" in m["text"] for m in chat.received), 10)
