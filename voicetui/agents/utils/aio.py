"""Small asyncio helpers shared by the framework: owned tasks and a closable channel."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import types
import weakref
from collections import deque
from collections.abc import AsyncIterator, Callable, Coroutine, Iterable
from typing import Any, Generic, TypeVar

from livekit import rtc

from ..exceptions import ModelError

T = TypeVar("T")
E = TypeVar("E")

logger = logging.getLogger("voicetui.agents")


class ChanClosed(Exception):
    """Raised by :meth:`Chan.recv` / :meth:`Chan.send` once the channel is closed."""


class Chan(Generic[T]):
    """An unbounded single-loop channel that can be closed; iterating ends at close.

    A consumer that only forwards items somewhere synchronously can :meth:`bind` a callback
    instead of receiving: items then go straight to it, without a task wake-up per item."""

    __slots__ = ("_closed", "_deliver", "_items", "_on_close", "_waiter")

    def __init__(self) -> None:
        self._items: deque[T] = deque()
        self._closed = False
        self._waiter: asyncio.Future[None] | None = None
        self._deliver: Callable[[T], None] | None = None
        self._on_close: Callable[[], None] | None = None

    @property
    def closed(self) -> bool:
        return self._closed

    def send_nowait(self, item: T) -> None:
        if self._closed:
            raise ChanClosed
        deliver = self._deliver
        if deliver is not None:
            try:
                deliver(item)
            except Exception:
                # like a forwarding task dying: log once, then queue the items (nobody reads)
                logger.exception("the consumer bound to a channel failed; unbinding it")
                self.unbind()
            return
        self._items.append(item)
        self._wake()

    def bind(self, deliver: Callable[[T], None], on_close: Callable[[], None]) -> None:
        """Hand every item to ``deliver`` as it is sent (the queued ones first), and call
        ``on_close`` once at close, until :meth:`unbind`. Receiving meanwhile gets nothing."""
        while self._items:
            deliver(self._items.popleft())
        if self._closed:
            on_close()
            return
        self._deliver, self._on_close = deliver, on_close

    def unbind(self) -> None:
        """Back to queueing items for :meth:`recv`."""
        self._deliver = self._on_close = None

    def clear(self) -> None:
        """Drop the items not received yet."""
        self._items.clear()

    def close(self) -> None:
        self._closed = True
        on_close = self._on_close
        if on_close is not None:
            self._deliver = self._on_close = None
            on_close()
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


class Feed(Generic[T]):
    """An async iterable of ``prefix`` then a :class:`Chan`'s items, consumed once: either by
    iterating, or by :meth:`bind` (for a consumer that only forwards items synchronously, which
    saves a task wake-up per item)."""

    __slots__ = ("_chan", "_prefix", "_used")

    def __init__(self, chan: Chan[T], prefix: Iterable[T] = ()) -> None:
        self._chan = chan
        self._prefix = list(prefix)
        self._used = False

    def _take(self) -> list[T]:
        if self._used:
            raise RuntimeError("a Feed can be consumed only once")
        self._used = True
        prefix, self._prefix = self._prefix, []
        return prefix

    def __aiter__(self) -> AsyncIterator[T]:
        return self._iter(self._take())

    async def _iter(self, prefix: list[T]) -> AsyncIterator[T]:
        for item in prefix:
            yield item
        async for item in self._chan:
            yield item

    def bind(self, deliver: Callable[[T], None], on_close: Callable[[], None]) -> None:
        """Deliver the prefix and then every item sent to the channel straight to ``deliver``;
        ``on_close`` when the channel closes. Call :meth:`unbind` when done."""
        for item in self._take():
            deliver(item)
        self._chan.bind(deliver, on_close)

    def unbind(self) -> None:
        self._chan.unbind()


def forget_cancellation(task: asyncio.Future[Any]) -> None:
    """Let a cancelled task drop the ``CancelledError`` it keeps until someone reads it: its
    traceback holds the task's frames, and so whatever they referenced (``self``, the task's
    owner, who holds the task): a reference cycle only the garbage collector would free."""
    if task.cancelled():
        with contextlib.suppress(asyncio.CancelledError):
            task.result()  # (reading it hands the kept exception over and forgets it)


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
    finally:
        for t in pending:
            if t.done():
                forget_cancellation(t)


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
        if task.cancelled():
            forget_cancellation(task)  # (owners keep their tasks: no cycle through the frames)
            return
        if (exc := task.exception()) is None:
            return
        if isinstance(exc, ModelError):  # a model's failure: reported as an error event, once
            logger.info("task %s of %s ended: %s", task.get_name(), self._name, exc.message)
        else:  # a bug: with its traceback
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


_ARITY: weakref.WeakKeyDictionary[Any, int | None] = weakref.WeakKeyDictionary()


def _arity(callback: Callable[..., Any]) -> int | None:
    """How many positional arguments ``callback`` takes (None: any number), cached per
    function: ``rtc.EventEmitter.emit`` works this out with ``inspect.signature`` on every
    call, which costs more than most handlers."""
    key: Any = callback.__func__ if isinstance(callback, types.MethodType) else callback
    cacheable = isinstance(key, types.FunctionType)
    if cacheable and key in _ARITY:
        return _ARITY[key]
    params = inspect.signature(callback).parameters.values()
    n: int | None
    if any(p.kind == p.VAR_POSITIONAL for p in params):
        n = None
    else:
        n = sum(1 for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD))
    if cacheable:
        _ARITY[key] = n
    return n


class EventEmitter(rtc.EventEmitter[E]):
    """``rtc.EventEmitter`` with the same semantics (handlers get as many of the arguments as
    they take, in registration order; a handler's exception is logged, a TypeError raised) but
    without inspecting every handler's signature on every emit."""

    def emit(self, event: E, *args: Any) -> None:
        handlers = self._events.get(event)
        if not handlers:
            return
        for callback in list(handlers):
            try:
                n = _arity(callback)
                callback(*args) if n is None else callback(*args[:n])
            except TypeError:
                raise
            except Exception:
                logger.exception("failed to emit event %s", event)


def now() -> float:
    """The running loop's clock (virtual under looptime); falls back to a monotonic clock."""
    try:
        return asyncio.get_running_loop().time()
    except RuntimeError:
        import time

        return time.monotonic()
