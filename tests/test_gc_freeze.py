"""OldObjectFreezer: what survives is frozen out of full collections on schedule, young garbage
is freed first, frozen cycles come back with reclaim(), and closing gives everything back."""

from __future__ import annotations

import asyncio
import gc
import weakref
from collections.abc import Iterator

import pytest

from voicetui.agents.utils.gc_freeze import OldObjectFreezer


class Node:
    def __init__(self) -> None:
        self.other: Node | None = None


def _cycle() -> weakref.ref[Node]:
    a, b = Node(), Node()
    a.other, b.other = b, a
    return weakref.ref(a)


def _is_frozen(obj: object) -> bool:
    return not any(o is obj for g in range(3) for o in gc.get_objects(g)) and gc.is_tracked(obj)


@pytest.fixture(autouse=True)
def _unfrozen() -> Iterator[None]:
    gc.unfreeze()
    yield
    gc.unfreeze()  # (gc.freeze is process-wide: leave the test process as found)


def test_young_garbage_is_freed_before_freezing_and_survivors_are_frozen() -> None:
    garbage = _cycle()  # unreachable already: must not be frozen
    alive = Node()
    freezer = OldObjectFreezer()
    freezer.freeze_now()
    assert garbage() is None
    assert _is_frozen(alive)
    assert freezer.frozen > 0 and freezer.freezes == 1


def test_a_frozen_cycle_is_freed_only_by_reclaim() -> None:
    a, b = Node(), Node()
    a.other, b.other = b, a
    ref = weakref.ref(a)
    freezer = OldObjectFreezer()
    freezer.freeze_now()
    del a, b  # garbage now, but frozen
    gc.collect()
    assert ref() is not None, "a full collection must not scan frozen objects"
    assert freezer.reclaim() >= 2
    assert ref() is None
    assert freezer.frozen > 0, "the survivors are frozen again"


@pytest.mark.looptime
async def test_it_freezes_every_interval_while_started_and_unfreezes_on_close() -> None:
    freezer = OldObjectFreezer(interval=2.0)
    async with freezer:
        assert freezer.running and freezer.freezes == 1  # at once
        await asyncio.sleep(1.0)
        later = Node()
        assert not _is_frozen(later)
        await asyncio.sleep(1.5)
        assert freezer.freezes == 2 and _is_frozen(later)
        await asyncio.sleep(4.0)
        assert freezer.freezes == 4
    assert not freezer.running
    assert freezer.frozen == 0 and not _is_frozen(later)


def test_the_interval_must_be_positive() -> None:
    with pytest.raises(ValueError, match="interval"):
        OldObjectFreezer(interval=0)
