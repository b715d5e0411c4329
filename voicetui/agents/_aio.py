"""Small asyncio helpers shared by the framework: owned tasks and a closable channel."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import AsyncIterator, Coroutine, Iterable
from typing import Any, Generic, TypeVar

T = TypeVar("T")

logger = logging.getLogger("voicetui.agents")


class ChanClosed(Exception):
    """Raised by :meth:`Chan.recv` / :meth:`Chan.send` once the channel is closed."""


class Chan(Generic[T]):
    """An unbounded single-loop channel that can be closed; iterating ends at close."""

    __slots__ = ("_closed", "_items", "_waiter")

    def __init__(self) -> None:
        self._items: deque[T] = deque()
        self._closed = False
        self._waiter: asyncio.Future[None] | None = None

    @property
    def closed(self) -> bool:
        return self._closed

    def send_nowait(self, item: T) -> None:
        if self._closed:
            raise ChanClosed
        self._items.append(item)
        self._wake()

    def clear(self) -> None:
        """Drop the items not received yet."""
        self._items.clear()

    def close(self) -> None:
        self._closed = True
        self._wake()

    def _wake(self) -> None:
        w = self._waiter
        if w is not None and not w.done():
            w.set_result(None)

    async def recv(self) -> T:
        while not self._items:
            if self._closed:
                raise ChanClosed
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        return self._items.popleft()

    def __aiter__(self) -> AsyncIterator[T]:
        return self._iter()

    async def _iter(self) -> AsyncIterator[T]:
        while True:
            try:
                yield await self.recv()
            except ChanClosed:
                return


async def cancel_and_wait(*tasks: asyncio.Future[Any] | None) -> None:
    """Cancel the given tasks and wait until they have finished, swallowing their outcome."""
    for t in tasks:
        if t is not None and t.done() and not t.cancelled():
            t.exception()  # retrieved: a failure the owner chose to drop is not "never retrieved"
    pending = [t for t in tasks if t is not None and not t.done()]
    for t in pending:
        t.cancel()
    if not pending:
        return
    # Shield our own cancellation from the tasks' result: keep waiting until they are really gone.
    done_all = asyncio.gather(*pending, return_exceptions=True)
    try:
        await asyncio.shield(done_all)
    except asyncio.CancelledError:
        with contextlib.suppress(BaseException):
            await done_all
        raise


class TaskSet:
    """Owns background tasks: logs their failures, and cancels + awaits them all on ``aclose``."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._tasks: set[asyncio.Task[Any]] = set()

    def create(self, coro: Coroutine[Any, Any, T], *, name: str | None = None) -> asyncio.Task[T]:
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._on_done)
        return task

    def _on_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and (exc := task.exception()) is not None:
            logger.error("task %s of %s failed", task.get_name(), self._name, exc_info=exc)

    def __len__(self) -> int:
        return len(self._tasks)

    @property
    def tasks(self) -> Iterable[asyncio.Task[Any]]:
        return tuple(self._tasks)

    async def aclose(self) -> None:
        while self._tasks:
            # a task can be done before its done-callback ran: drop it here, or this loop would
            # spin without ever yielding to the loop (cancel_and_wait returns at once for it)
            for t in [t for t in self._tasks if t.done()]:
                self._tasks.discard(t)
                if not t.cancelled():
                    t.exception()
            await cancel_and_wait(*self._tasks)


def now() -> float:
    """The running loop's clock (virtual under looptime); falls back to a monotonic clock."""
    try:
        return asyncio.get_running_loop().time()
    except RuntimeError:
        import time

        return time.monotonic()
