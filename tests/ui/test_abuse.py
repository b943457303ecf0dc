"""The sliding one-minute windows behind the per-user limits."""

from __future__ import annotations

from ui.abuse import SlidingWindow


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_window_admits_its_limit_then_says_how_long_to_wait() -> None:
    clock = Clock()
    window = SlidingWindow(limit=3, window=60, clock=clock)
    for offset in (0, 10, 20):
        clock.now = 1000 + offset
        assert window.take("alice") == 0
    clock.now = 1030
    assert window.take("alice") == 30  # the first event leaves the window at 1060
    assert window.take("bob") == 0  # per user
    assert window.take("alice", count=2) == 40  # two must leave: the second at 1070
    clock.now = 1060
    assert window.take("alice") == 0
    assert window.take("alice", count=5) == 60  # more than the limit: never at once


def test_idle_users_are_forgotten() -> None:
    clock = Clock()
    window = SlidingWindow(limit=1, window=60, clock=clock)
    for number in range(10_001):
        window.take(f"user{number}")
    clock.now += 61
    window.take("late")
    assert list(window._events) == ["late"]
