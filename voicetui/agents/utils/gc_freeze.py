"""Short garbage-collector pauses in a process that hosts many long sessions.

CPython's full collection stops the event loop for as long as it takes to scan every tracked
object outside the permanent generation (0.2-0.7 µs an object on the 2-core test machine). A
voice session keeps about 250 such objects for its pipeline and adds about 28 a turn for its
history, so at 256 sessions a full collection stops every session's audio for 40-130 ms
(docs/benchmarks.md, "Many sessions per core"). Almost all of those objects live until their
session closes: scanning them again and again finds nothing to free.

:class:`OldObjectFreezer` moves what has survived into the permanent generation every
``interval`` seconds (``gc.freeze()``), after a collection of the younger generations so that
short-lived cycles are freed first. Full collections then scan only what is newer than the last
freeze.

The price, and why this is opt-in: a reference cycle among frozen objects is never freed by
the collector on its own. The framework leaves none behind: a turn's objects and a closed
session with its history, whatever its turn was doing, are freed by reference counting
(``tests/test_session_freed.py`` closes at each stage of a turn; in the turns
``scripts/overhead`` plays, nothing of the framework was left for the collector).
Other code in the process may leave cycles (a plugin, a UI toolkit's widgets): call
:meth:`OldObjectFreezer.reclaim` when a pause is affordable, a full collection of everything
like CPython's own, after which the survivors are frozen again. ``gc.freeze()`` is process-wide:
one freezer per process, and no other ``gc.freeze()`` beside it.

Use it around whatever hosts the sessions, once the process has started up::

    async with OldObjectFreezer(interval=2.0):
        await serve()  # sessions start, talk and close meanwhile
"""

from __future__ import annotations

import asyncio
import gc
import logging
from types import TracebackType
from typing import Self

from .aio import cancel_and_wait

logger = logging.getLogger("voicetui.agents.gc")


class OldObjectFreezer:
    """Freezes long-lived objects out of full garbage collections every ``interval`` seconds
    while started; :meth:`reclaim` frees the garbage cycles among them; :meth:`aclose` (or
    leaving ``async with``) stops and unfreezes. It owns the permanent generation: what other
    code froze is unfrozen by :meth:`reclaim` (then frozen again) and :meth:`aclose` as well."""

    def __init__(self, interval: float = 2.0) -> None:
        if interval <= 0:
            raise ValueError(f"interval must be > 0 seconds, not {interval}")
        self._interval = interval
        self._task: asyncio.Task[None] | None = None
        self.freezes = 0
        """How many times :meth:`freeze_now` ran."""

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    @property
    def frozen(self) -> int:
        """Objects in the permanent generation now (this process's, whoever froze them)."""
        return gc.get_freeze_count()

    def start(self) -> None:
        """Freeze now and then every ``interval`` seconds, on the running loop."""
        if self.running:
            return
        self.freeze_now()
        self._task = asyncio.get_running_loop().create_task(self._run(), name="OldObjectFreezer")

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            self.freeze_now()

    def freeze_now(self) -> None:
        """Free the young generations' garbage, then freeze everything still alive."""
        gc.collect(1)
        gc.freeze()
        self.freezes += 1

    def reclaim(self) -> int:
        """One full collection of everything, frozen objects included (as long a pause as
        CPython's own full collections), then freeze the survivors again. Returns how many
        unreachable objects were found."""
        gc.unfreeze()
        found = gc.collect()
        gc.freeze()
        logger.debug("reclaimed %d objects; %d frozen", found, gc.get_freeze_count())
        return found

    async def aclose(self) -> None:
        """Stop freezing and give every frozen object back to the collector (the next full
        collection frees what closed meanwhile)."""
        task, self._task = self._task, None
        await cancel_and_wait(task)
        gc.unfreeze()

    async def __aenter__(self) -> Self:
        self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
