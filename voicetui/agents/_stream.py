"""The shape every streaming model shares: an input channel, an output channel, one task."""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Callable
from types import TracebackType
from typing import Generic, Self, TypeVar

from .utils.aio import Chan, ChanClosed, cancel_and_wait

In = TypeVar("In")
Out = TypeVar("Out")


class FlushSentinel:
    """Marks a segment boundary in a stream's input (``flush()``)."""

    __slots__ = ()


FLUSH = FlushSentinel()


class DuplexStream(ABC, Generic[In, Out]):
    """Input pushed with :meth:`_push` / :meth:`flush` / :meth:`end_input`; output read by async
    iteration. Subclasses implement :meth:`_run`, reading ``self._input`` and calling
    :meth:`_emit`. An exception from ``_run`` ends the iteration by being raised to the reader."""

    def __init__(self) -> None:
        self._input: Chan[In | FlushSentinel] = Chan()
        self._output: Chan[Out] = Chan()
        self._task = asyncio.create_task(self._main(), name=f"{type(self).__name__}._main")

    @abstractmethod
    async def _run(self) -> None: ...

    async def _main(self) -> None:
        try:
            await self._run()
        finally:
            self._output.close()

    async def _consume_input(self, handle: Callable[[In | FlushSentinel], None]) -> None:
        """For a ``_run`` whose work per input item is cheap and synchronous (buffering,
        framing, a fast model): call ``handle`` on each item inside the pusher's own call, as
        it is pushed, and return when the input ends. No task wake-up per item, which at 50-100
        audio frames per second is most of what a stream costs. An exception from ``handle``
        ends the stream with that error, like one raised by ``_run``."""
        ended: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def deliver(item: In | FlushSentinel) -> None:
            if ended.done():
                return
            try:
                handle(item)
            except Exception as e:
                ended.set_exception(e)

        def on_close() -> None:
            if not ended.done():
                ended.set_result(None)

        self._input.bind(deliver, on_close)
        try:
            await ended
        finally:
            self._input.unbind()

    def _emit(self, item: Out) -> None:
        if not self._output.closed:
            self._output.send_nowait(item)

    def _push(self, item: In) -> None:
        if self._input.closed:
            raise RuntimeError(f"{type(self).__name__}: input already ended")
        self._input.send_nowait(item)

    def flush(self) -> None:
        """End the current segment: the model should produce its output for it now."""
        if not self._input.closed:
            self._input.send_nowait(FLUSH)

    def end_input(self) -> None:
        """No more input: flush, then let the stream finish."""
        self.flush()
        self._input.close()

    async def __anext__(self) -> Out:
        try:
            return await self._output.recv()
        except ChanClosed:
            pass
        await asyncio.wait({self._task})
        if not self._task.cancelled() and (exc := self._task.exception()) is not None:
            raise exc
        raise StopAsyncIteration

    def __aiter__(self) -> AsyncIterator[Out]:
        return self

    async def pipe_to(self, deliver: Callable[[Out], None]) -> None:
        """Consume the stream by calling ``deliver`` on each item as it is emitted (instead of
        iterating, which costs a task wake-up per item). Returns when the stream ends; raises
        its error like iteration would, or the error ``deliver`` raised (the stream is then
        left to the caller to close)."""
        loop = asyncio.get_running_loop()
        ended: asyncio.Future[None] = loop.create_future()
        failure: list[BaseException] = []

        def safe(item: Out) -> None:
            if failure:
                return
            try:
                deliver(item)
            except Exception as e:
                failure.append(e)
                if not ended.done():
                    ended.set_result(None)

        def on_close() -> None:
            if not ended.done():
                ended.set_result(None)

        self._output.bind(safe, on_close)
        try:
            await ended
        finally:
            self._output.unbind()
        if failure:
            raise failure[0]
        await asyncio.wait({self._task})
        if not self._task.cancelled() and (exc := self._task.exception()) is not None:
            raise exc

    async def aclose(self) -> None:
        self._input.close()
        await cancel_and_wait(self._task)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()
