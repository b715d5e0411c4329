"""The per-frame shortcuts added for the overhead benchmark (issue 8): bound channels, feeds and
piped streams must behave like the task-forwarding they replace."""

from __future__ import annotations

import asyncio
import logging

import pytest

from voicetui.agents._stream import DuplexStream, FlushSentinel
from voicetui.agents.utils.aio import Chan, ChanClosed, Feed


async def test_bound_chan_delivers_queued_then_live_items_and_close() -> None:
    ch: Chan[int] = Chan()
    ch.send_nowait(1)
    got: list[int] = []
    closed: list[bool] = []
    ch.bind(got.append, lambda: closed.append(True))
    assert got == [1]
    ch.send_nowait(2)
    assert got == [1, 2]
    ch.close()
    assert closed == [True]
    with pytest.raises(ChanClosed):
        ch.send_nowait(3)


async def test_unbound_chan_queues_again() -> None:
    ch: Chan[int] = Chan()
    got: list[int] = []
    ch.bind(got.append, lambda: None)
    ch.unbind()
    ch.send_nowait(5)
    assert got == [] and await ch.recv() == 5


async def test_bind_to_a_closed_chan_calls_on_close_at_once() -> None:
    ch: Chan[int] = Chan()
    ch.send_nowait(1)
    ch.close()
    got: list[int] = []
    closed: list[bool] = []
    ch.bind(got.append, lambda: closed.append(True))
    assert got == [1] and closed == [True]


async def test_a_failing_consumer_is_unbound_once_and_items_queue(
    caplog: pytest.LogCaptureFixture,
) -> None:
    ch: Chan[int] = Chan()

    def boom(_: int) -> None:
        raise ValueError("nope")

    ch.bind(boom, lambda: None)
    with caplog.at_level(logging.ERROR):
        ch.send_nowait(1)  # does not raise into the producer
        ch.send_nowait(2)
    assert sum("unbinding" in r.message for r in caplog.records) == 1
    assert await ch.recv() == 2


async def test_feed_iterates_prefix_then_channel() -> None:
    ch: Chan[int] = Chan()
    feed = Feed(ch, [1, 2])
    ch.send_nowait(3)
    ch.close()
    assert [x async for x in feed] == [1, 2, 3]
    with pytest.raises(RuntimeError):
        feed.__aiter__()  # consumed once


async def test_feed_bind_delivers_prefix_first() -> None:
    ch: Chan[int] = Chan()
    ch.send_nowait(3)
    feed = Feed(ch, [1, 2])
    got: list[int] = []
    ended: list[bool] = []
    feed.bind(got.append, lambda: ended.append(True))
    ch.send_nowait(4)
    ch.close()
    assert got == [1, 2, 3, 4] and ended == [True]


class _Doubler(DuplexStream[int, int]):
    def __init__(self, fail_at: int | None = None) -> None:
        self.fail_at = fail_at
        super().__init__()

    async def _run(self) -> None:
        async for x in self._input:
            if isinstance(x, FlushSentinel):
                continue
            if x == self.fail_at:
                raise RuntimeError("model failed")
            self._emit(x * 2)


async def test_pipe_to_delivers_every_item_and_returns_at_the_end() -> None:
    s = _Doubler()
    for i in range(3):
        s._push(i)
    s.end_input()
    got: list[int] = []
    await s.pipe_to(got.append)
    assert got == [0, 2, 4]
    await s.aclose()


async def test_pipe_to_raises_the_stream_error() -> None:
    s = _Doubler(fail_at=2)
    s._push(1)
    s._push(2)
    got: list[int] = []
    with pytest.raises(RuntimeError, match="model failed"):
        await s.pipe_to(got.append)
    assert got == [2]
    await s.aclose()


async def test_pipe_to_raises_the_consumer_error() -> None:
    s = _Doubler()
    s._push(1)

    def bad(_: int) -> None:
        raise ValueError("consumer")

    with pytest.raises(ValueError, match="consumer"):
        await asyncio.wait_for(s.pipe_to(bad), 5)
    await s.aclose()


def test_event_emitter_passes_as_many_arguments_as_each_handler_takes() -> None:
    from voicetui.agents.utils.aio import EventEmitter

    em: EventEmitter[str] = EventEmitter()
    calls: list[tuple[object, ...]] = []

    class Listener:
        def one(self, a: object) -> None:
            calls.append(("method", a))

    em.on("ev", lambda: calls.append(("none",)))
    em.on("ev", lambda a: calls.append(("one", a)))
    em.on("ev", lambda *a: calls.append(("var", *a)))
    em.on("ev", Listener().one)
    for _ in range(2):  # the second emit uses the cached arities
        em.emit("ev", 1, 2)
    assert calls == [("none",), ("one", 1), ("var", 1, 2), ("method", 1)] * 2


def test_event_emitter_logs_handler_errors_and_goes_on(caplog: pytest.LogCaptureFixture) -> None:
    from voicetui.agents.utils.aio import EventEmitter

    em: EventEmitter[str] = EventEmitter()
    seen: list[int] = []

    def bad(_: int) -> None:
        raise ValueError("handler")

    em.on("ev", bad)
    em.on("ev", seen.append)
    with caplog.at_level(logging.ERROR):
        em.emit("ev", 7)
    assert seen == [7] and any("failed to emit" in r.message for r in caplog.records)
    em.off("ev", bad)
    em.emit("ev", 8)
    assert seen == [7, 8]
    em.emit("other", 1)  # no handlers: nothing happens


class _SyncDoubler(DuplexStream[int, int]):
    """Consumes its input synchronously: every pushed item is handled inside ``_push``."""

    def __init__(self, fail_on: int | None = None) -> None:
        self.handled: list[int | str] = []
        self._fail_on = fail_on
        super().__init__()

    async def _run(self) -> None:
        def take(item: int | FlushSentinel) -> None:
            if isinstance(item, FlushSentinel):
                self.handled.append("flush")
                return
            if item == self._fail_on:
                raise ValueError(f"cannot take {item}")
            self.handled.append(item)
            self._emit(item * 2)

        await self._consume_input(take)
        self._emit(-1)  # the end of input is seen after the last item

    def push(self, item: int) -> None:
        self._push(item)


async def test_consume_input_handles_items_inside_the_push() -> None:
    s = _SyncDoubler()
    await asyncio.sleep(0)  # the stream's task has bound its input
    s.push(1)
    s.push(2)
    assert s.handled == [1, 2]  # no task step needed between push and handling
    s.flush()
    s.end_input()
    assert [x async for x in s] == [2, 4, -1]
    assert s.handled == [1, 2, "flush", "flush"]  # flush(), then end_input()'s flush
    await s.aclose()


async def test_consume_input_takes_items_pushed_before_the_task_ran() -> None:
    s = _SyncDoubler()
    s.push(3)  # before _run has started: queued, then delivered at bind
    s.end_input()
    assert [x async for x in s] == [6, -1]
    await s.aclose()


async def test_consume_input_ends_the_stream_with_the_handler_error() -> None:
    s = _SyncDoubler(fail_on=2)
    await asyncio.sleep(0)
    s.push(1)
    s.push(2)  # the producer does not see the error...
    s.push(3)  # ...and later items are ignored
    with pytest.raises(ValueError, match="cannot take 2"):
        async for _ in s:
            pass
    assert s.handled == [1]
    await s.aclose()


async def test_windowed_vad_rebuffers_frames_as_they_are_pushed() -> None:
    """The webrtcvad/Silero streams wake their task once per model window, not per frame."""
    import numpy as np

    from voicetui.agents.audio import make_frame
    from voicetui.plugins.webrtcvad import VAD

    vad = VAD()
    stream = vad.stream()
    await asyncio.sleep(0)
    silence = make_frame(np.zeros(160, dtype=np.int16), 16000)  # 10 ms
    stream.push_frame(silence)
    rebuffer = stream._rebuffer  # type: ignore[attr-defined]
    assert rebuffer.input_rate == 16000  # taken in the push itself
    for _ in range(9):
        stream.push_frame(silence)
    stream.end_input()
    events = [ev async for ev in stream]
    assert events and all(ev.speech_duration == 0 for ev in events)
    assert sum(1 for ev in events if ev.type.value == "inference_done") >= 3
    await stream.aclose()


# --- PortAudio streams opened for a task that gives up (the native crash of the suite) --------
class _FakePaStream:
    def __init__(self) -> None:
        self.closed = False
        self.started = False

    def start(self) -> None:
        self.started = True

    def abort(self, ignore_errors: bool = True) -> None:
        pass

    def close(self, ignore_errors: bool = True) -> None:
        self.closed = True


async def test_a_stream_opened_after_its_opener_gave_up_is_closed_by_the_worker() -> None:
    import threading

    from voicetui.io.local import devices
    from voicetui.io.local._stream import _Handoff

    release = threading.Event()
    stream = _FakePaStream()

    def make(_sd: object) -> _FakePaStream:
        release.wait(5)
        return stream

    handoff = _Handoff()
    loop = asyncio.get_running_loop()
    opening = loop.run_in_executor(None, handoff.open, make)
    await asyncio.sleep(0.05)
    assert handoff.abandon() is None  # not opened yet: the worker will close it
    release.set()
    assert await opening is None
    assert stream.started and stream.closed and stream not in devices.open_streams()


async def test_a_stream_opened_before_its_opener_gave_up_goes_to_the_opener() -> None:
    from voicetui.io.local import devices
    from voicetui.io.local._stream import _close_in_background, _Handoff

    stream = _FakePaStream()
    handoff = _Handoff()
    loop = asyncio.get_running_loop()
    assert await loop.run_in_executor(None, handoff.open, lambda _sd: stream) is stream
    assert stream in devices.open_streams()  # held strongly while open
    orphan = handoff.abandon()  # the opener was cancelled after the open finished
    assert orphan is stream
    await _close_in_background(loop, orphan)
    assert stream.closed and stream not in devices.open_streams()
