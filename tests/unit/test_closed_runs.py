"""`api.closed_runs.ClosedRuns`: bounded by size (least recently read leaves first) and by
age, and what it knows about a workflow's latest run."""

from __future__ import annotations

from api.closed_runs import ClosedRuns


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_the_least_recently_read_leaves_first() -> None:
    cache: ClosedRuns[str] = ClosedRuns(size=2, ttl_seconds=60)
    cache.put(("wf-a", "r1"), "a")
    cache.put(("wf-b", "r1"), "b")
    assert cache.get(("wf-a", "r1")) == "a"  # now the most recently read
    cache.put(("wf-c", "r1"), "c")
    assert len(cache) == 2
    assert cache.get(("wf-b", "r1")) is None
    assert (cache.get(("wf-a", "r1")), cache.get(("wf-c", "r1"))) == ("a", "c")
    assert not cache.closed_latest("wf-b")


def test_an_entry_expires_after_its_ttl() -> None:
    clock = Clock()
    cache: ClosedRuns[str] = ClosedRuns(size=10, ttl_seconds=5, clock=clock)
    cache.put(("wf", "r1"), "closed")
    clock.now = 4.9
    assert cache.get(("wf", "r1")) == "closed"
    assert cache.closed_latest("wf")
    clock.now = 5.0
    assert cache.get(("wf", "r1")) is None
    assert not cache.closed_latest("wf")
    assert len(cache) == 0


def test_an_open_run_makes_the_latest_unknown_but_keeps_closed_ones() -> None:
    cache: ClosedRuns[str] = ClosedRuns(size=10, ttl_seconds=60)
    cache.put(("wf", "r1"), "closed")
    cache.saw_open("wf")
    assert not cache.closed_latest("wf")
    assert cache.get(("wf", "r1")) == "closed"


def test_size_zero_keeps_nothing() -> None:
    cache: ClosedRuns[str] = ClosedRuns(size=0, ttl_seconds=60)
    cache.put(("wf", "r1"), "closed")
    assert (len(cache), cache.get(("wf", "r1")), cache.closed_latest("wf")) == (0, None, False)
