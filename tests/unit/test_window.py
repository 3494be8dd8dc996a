"""The session window on its own, with a fake client: the widened filter, the exact window on our
side, the anchored count, and an EM whose counts say nothing."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, cast

from exporter.config import PollSettings
from exporter.em.model import Page, Session
from exporter.polling.window import SessionWindow

if TYPE_CHECKING:
    from exporter.em.client import EMClient

SETTINGS = PollSettings()
NOW = 1_800_000_000.0


def session(sid: str, start: float, state: str = "Stopped") -> Session:
    return Session(sid, "P", "vbr", state, "Success", 100, start, None, ())


class FakeClient:
    """Answers like an EM holding `sessions`; counts say `count` (None: the answer cannot say)."""

    def __init__(self, sessions: list[Session], count: int | None = -1) -> None:
        self.sessions = sessions
        self.count = count
        self.asked: list[float] = []
        self.counted: list[float] = []

    def session_pages(self, since: float) -> Iterator[Page[Session]]:
        self.asked.append(since)
        items = tuple(s for s in self.sessions if (s.start or 0) >= since)
        yield Page(items=items, page_num=1, pages_count=1, next_path=None)

    def session_count(self, since: float) -> int | None:
        self.counted.append(since)
        if self.count == -1:
            return sum(1 for s in self.sessions if (s.start or 0) >= since)
        return self.count


def window(client: FakeClient) -> SessionWindow:
    return SessionWindow(cast("EMClient", client), SETTINGS)


def test_the_query_reaches_back_by_the_slack_and_the_answer_is_cut_exactly() -> None:
    since = NOW - 1800
    client = FakeClient([session("old", NOW - 5 * 3600), session("new", NOW - 600)])
    read = window(client).read(since, first=False, wanted=set())
    assert client.asked == [float(int(since - SETTINGS.filter_time_slack_seconds))]
    assert [s.id for s in read.sessions] == ["new"]  # "old" is in the slack band only
    assert read.answered == 2  # the budget follows what EM sent


def test_quiet_counts_use_the_last_reads_own_filter_value() -> None:
    client = FakeClient([session("a", NOW - 600)])
    w = window(client)
    w.read(NOW - 1800, first=False, wanted=set())
    assert w.quiet([]) and w.nothing_new(NOW - 1700)
    assert client.counted == [client.asked[0]]  # anchored: the same value, however EM reads it
    client.sessions.append(session("late", NOW - 900))  # EM learns of a session late
    assert not w.nothing_new(NOW - 1700)


def test_the_anchor_moves_once_it_is_a_lookback_behind() -> None:
    client = FakeClient([])
    w = window(client)
    w.read(NOW - 1800, first=False, wanted=set())
    assert not w.nothing_new(NOW - 1800 + SETTINGS.session_lookback_seconds + 1)
    assert client.counted == []  # a full read instead of a count


def test_an_em_whose_counts_say_nothing_gets_full_reads_from_then_on() -> None:
    client = FakeClient([], count=None)
    w = window(client)
    w.read(NOW - 1800, first=False, wanted=set())
    assert not w.nothing_new(NOW - 1800)
    assert not w.nothing_new(NOW - 1800)
    assert len(client.counted) == 1  # asked once, then not again
