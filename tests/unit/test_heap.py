"""`heap.freeze_start_up_heap`: what is alive at the call leaves the collector's generations;
what the process allocates afterwards is still collected."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

import heap


@pytest.fixture(autouse=True)
def unfrozen() -> Iterator[None]:
    gc.unfreeze()
    yield
    gc.unfreeze()


def tracked(objects: list[object]) -> list[bool]:
    """Whether each of `objects` is in one of the collector's generations."""
    ids = {id(o) for o in gc.get_objects()}
    return [id(o) in ids for o in objects]


class Node:
    cycle: Node | None = None


def test_what_is_alive_at_the_freeze_leaves_the_generations() -> None:
    alive: list[object] = [[], {"key": []}, Node()]  # containers the collector tracks
    assert tracked(alive) == [True, True, True]
    frozen = heap.freeze_start_up_heap()
    assert frozen == gc.get_freeze_count() >= len(alive)
    assert tracked(alive) == [False, False, False]
    gc.unfreeze()
    assert tracked(alive) == [True, True, True]


def test_garbage_made_after_the_freeze_is_still_collected() -> None:
    heap.freeze_start_up_heap()
    node = Node()
    node.cycle = node  # only the cyclic collector can free it
    gone = weakref.ref(node)
    del node
    gc.collect()
    assert gone() is None


def test_garbage_alive_at_the_freeze_is_collected_first() -> None:
    node = Node()
    node.cycle = node
    gone = weakref.ref(node)
    del node  # unreachable, but only a collection frees it: the freeze collects first
    heap.freeze_start_up_heap()
    assert gone() is None
