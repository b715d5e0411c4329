"""Keeps one PortAudio stream running for a backend: opens it on the chosen device, watches it
(finished unexpectedly, or no callback for a while), reports faults as readable ``error``
events, and reopens it with backoff when the device comes back. Opening and closing happen in a
worker thread (they block); the loop only waits.

Standby: the owner may ask for the stream to be stopped without being closed (the speaker while
the agent is silent: its callback and PulseAudio's thread then cost nothing) and restarted
later. A stream in standby is not watched for stalls; one that fails to restart is a fault like
any other (closed, reported and reopened)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable, Sequence
from typing import Any

from ...agents.utils.aio import now
from .devices import (
    DeviceInfo,
    DeviceSpec,
    Direction,
    close_stream,
    open_stream,
    refresh_devices,
    resolve_device,
    start_stream,
    stop_stream,
)
from .events import AudioErrorEvent, LocalAudioEvents, StreamOpenedEvent

logger = logging.getLogger("voicetui.io.local")

OpenFn = Callable[[Any, DeviceInfo, Callable[[], None]], Any]
"""(sounddevice module, device, finished_callback) -> an unstarted sounddevice stream."""

DEFAULT_BACKOFF = (0.5, 1.0, 2.0, 4.0)


def describe_error(e: BaseException) -> str:
    """A one-line message for a device error (PortAudioError args are (text, code, ...))."""
    if e.args and isinstance(e.args[0], str):
        text = e.args[0].strip()
        host = e.args[2] if len(e.args) > 2 else None  # (host API, error code, error text)
        if isinstance(host, tuple) and len(host) > 2 and host[2]:
            text += f" ({host[2]})"
        return text
    return str(e) or type(e).__name__


class StreamSupervisor:
    def __init__(
        self,
        *,
        direction: Direction,
        device: DeviceSpec,
        events: LocalAudioEvents,
        make_stream: OpenFn,
        on_opened: Callable[[Any, DeviceInfo], None],
        on_closed: Callable[[bool], None],
        on_standby: Callable[[bool], None] | None = None,
        stall_timeout: float = 2.0,
        backoff: Sequence[float] = DEFAULT_BACKOFF,
    ) -> None:
        self._direction = direction
        self._what = "microphone" if direction == "input" else "speaker"
        self._spec = device
        self._events = events
        self._make_stream = make_stream
        self._on_opened = on_opened
        self._on_closed = on_closed
        self._on_standby = on_standby
        self._stall_timeout = stall_timeout
        self._backoff = tuple(backoff) or DEFAULT_BACKOFF
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()  # a switch (or close) interrupts waits
        self._poke = asyncio.Event()  # anything the watch acts on: switch, end, standby change
        self._ended: asyncio.Event | None = None
        self._last_beat = 0.0
        self._generation = 0
        self._device: DeviceInfo | None = None
        self._stream: Any = None
        self._last_error: str | None = None
        self._open = asyncio.Event()
        self._standby_wanted = False
        self._standby = False  # the open stream is stopped on purpose
        # read by the finished callback (PortAudio thread): the stream stops because we stop it
        self._stopping = False

    @property
    def device(self) -> DeviceInfo | None:
        """The device of the running stream (None while there is none)."""
        return self._device if self._stream is not None else None

    @property
    def spec(self) -> DeviceSpec:
        return self._spec

    @property
    def stream(self) -> Any:
        return self._stream

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"LocalAudio.{self._direction}")

    @property
    def is_open(self) -> bool:
        return self._open.is_set()

    async def wait_open(self) -> None:
        """Until a stream runs."""
        await self._open.wait()

    def heartbeat(self) -> None:
        """The owner got a block from the stream (on the loop)."""
        self._last_beat = now()

    @property
    def in_standby(self) -> bool:
        """The open stream is stopped on the owner's request (see :meth:`set_standby`)."""
        return self._standby and self._stream is not None

    def set_standby(self, standby: bool) -> None:
        """Stop the stream (True) without closing it, or restart it (False). Done by the
        supervisor's task, in order with switches and faults; cheap to call repeatedly. A
        stream opened later (a switch, a recovery) is put in standby too while it is wanted."""
        if standby != self._standby_wanted:
            self._standby_wanted = standby
            self._poke.set()

    async def switch(self, device: DeviceSpec) -> DeviceInfo:
        """Use another device from now on; raises :class:`DeviceNotFoundError` (keeping the
        current device) if there is no such device."""
        info = await asyncio.to_thread(resolve_device, device, self._direction)
        self._spec = device
        self._wake.set()
        self._poke.set()
        return info

    async def aclose(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    # --- the loop -------------------------------------------------------------------------
    def _fault(self, message: str, error: BaseException | None) -> None:
        if message == self._last_error:
            logger.debug("%s", message)
            return
        self._last_error = message
        logger.warning("%s", message)
        self._events.emit("error", AudioErrorEvent(self._direction, message, error))

    async def _sleep(self, delay: float) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(delay):
                await self._wake.wait()

    async def _run(self) -> None:
        attempt = 0
        recovered = False
        try:
            while True:
                self._wake.clear()
                try:
                    stream, info = await self._open_stream()
                except Exception as e:  # PortAudioError, DeviceNotFoundError, OSError...
                    delay = self._backoff[min(attempt, len(self._backoff) - 1)]
                    attempt += 1
                    self._on_closed(True)
                    self._fault(
                        f"{self._what} unavailable: {describe_error(e)} "
                        f"(retrying every {self._backoff[-1]:g}s at most)",
                        e,
                    )
                    await asyncio.to_thread(refresh_devices)
                    await self._sleep(delay)
                    recovered = True
                    continue
                attempt = 0
                self._last_error = None
                self._events.emit(
                    "stream_opened",
                    StreamOpenedEvent(
                        direction=self._direction,
                        device=info.name,
                        device_index=info.index,
                        sample_rate=int(stream.samplerate),
                        latency=float(stream.latency),
                        recovered=recovered,
                    ),
                )
                recovered = False
                reason = await self._watch()
                await self._close_current(lost=reason is not None)
                if reason is None:  # switched device
                    continue
                self._fault(f"{self._what} {info.name!r} stopped: {reason}; reopening", None)
                recovered = True
                await self._sleep(self._backoff[0])
        finally:
            await self._close_current()

    async def _open_stream(self) -> tuple[Any, DeviceInfo]:
        info = await asyncio.to_thread(resolve_device, self._spec, self._direction)
        self._generation += 1
        generation = self._generation
        loop = asyncio.get_running_loop()
        ended = asyncio.Event()

        def finished() -> None:  # PortAudio thread
            if self._stopping:  # our standby stop (it calls this before it returns)
                return
            with contextlib.suppress(RuntimeError):  # the loop is closed
                loop.call_soon_threadsafe(self._on_finished, generation, ended)

        def make(sd: Any) -> Any:
            return self._make_stream(sd, info, finished)

        # Submitted to the executor at once (not a task that a shutdown could cancel before it
        # runs); if this task is cancelled meanwhile, whoever comes second closes the stream.
        handoff = _Handoff()
        opening = loop.run_in_executor(None, handoff.open, make)
        try:
            stream = await asyncio.shield(opening)
        except asyncio.CancelledError:
            orphan = handoff.abandon()
            if orphan is not None:
                _close_in_background(loop, orphan)
            raise
        self._stream, self._device, self._ended = stream, info, ended
        self._standby = self._stopping = False
        self._last_beat = now()
        self._on_opened(stream, info)
        self._open.set()
        return stream, info

    def _on_finished(self, generation: int, ended: asyncio.Event) -> None:
        if generation == self._generation:
            ended.set()
            self._poke.set()

    async def _watch(self) -> str | None:
        """Until the stream dies (returns why) or a switch is requested (None). Also stops and
        restarts it for standby; a stream in standby is not checked (no callbacks is normal)."""
        ended = self._ended
        stream = self._stream
        assert ended is not None and stream is not None
        check = min(0.25, self._stall_timeout / 4)
        while True:
            self._poke.clear()  # (before the checks: whatever happens after them wakes the wait)
            if self._wake.is_set():
                return None
            if ended.is_set():
                return "the stream finished unexpectedly (device unplugged or gone)"
            if self._standby_wanted != self._standby:
                failure = await self._apply_standby(stream, self._standby_wanted)
                if failure is not None:
                    return failure
                continue
            if not self._standby:
                if not stream.active:
                    return "the stream stopped unexpectedly"
                if now() - self._last_beat > self._stall_timeout:
                    return f"no audio for {self._stall_timeout:g}s (device stalled)"
            # in standby nothing is due until a poke: no periodic wake-ups
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(None if self._standby else check):
                    await self._poke.wait()

    async def _apply_standby(self, stream: Any, standby: bool) -> str | None:
        """Stop or restart ``stream``; returns why that failed (the stream is then lost)."""
        loop = asyncio.get_running_loop()
        try:
            if standby:
                self._stopping = True
                await asyncio.shield(loop.run_in_executor(None, stop_stream, stream))
            else:
                self._stopping = False
                await asyncio.shield(loop.run_in_executor(None, start_stream, stream))
                self._last_beat = now()  # the stall clock starts again from the restart
        except Exception as e:  # PortAudioError: the device went away meanwhile
            self._stopping = False
            action = "stop" if standby else "restart"
            return f"could not {action} the stream: {describe_error(e)}"
        self._standby = standby
        logger.debug("%s stream %s", self._what, "in standby" if standby else "restarted")
        if self._on_standby is not None:
            self._on_standby(standby)
        return None

    async def _close_current(self, *, lost: bool = False) -> None:
        stream, self._stream = self._stream, None
        if stream is None:
            return
        self._generation += 1  # its finished callback is ours, not a fault
        self._standby = False
        self._open.clear()
        self._on_closed(lost)
        await asyncio.shield(_close_in_background(asyncio.get_running_loop(), stream))


class _Handoff:
    """A stream opened in a worker thread for a task that may be cancelled meanwhile: the
    stream goes to the task, or is closed by the worker if the task gave up first."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._stream: Any = None
        self._abandoned = False

    def open(self, make: Callable[[Any], Any]) -> Any:  # worker thread
        stream = open_stream(make)
        with self._lock:
            if not self._abandoned:
                self._stream = stream
                return stream
        close_stream(stream)
        return None

    def abandon(self) -> Any:
        """The task gave up: returns the stream if it was opened already (the caller closes
        it), else the worker will close it."""
        with self._lock:
            self._abandoned = True
            stream, self._stream = self._stream, None
            return stream


def _close_in_background(loop: asyncio.AbstractEventLoop, stream: Any) -> asyncio.Future[None]:
    """Close ``stream`` in the loop's executor, submitted now, so it happens even if the caller
    is cancelled (the loop's shutdown waits for the executor)."""
    try:
        return loop.run_in_executor(None, close_stream, stream)
    except RuntimeError:  # the executor is shut down already
        close_stream(stream)
        done: asyncio.Future[None] = loop.create_future()
        done.set_result(None)
        return done


class SupervisedDevice:
    """The device-facing half shared by the capture and playback backends: which device, its
    latency, opening, waiting for it and switching it, all through a :class:`StreamSupervisor`.
    Subclasses set ``_supervisor``, ``_closed``, ``_loop`` and ``label``."""

    _supervisor: StreamSupervisor
    _closed: bool
    _loop: asyncio.AbstractEventLoop | None
    label: str

    @property
    def device(self) -> DeviceInfo | None:
        """The device in use (None while no stream runs)."""
        return self._supervisor.device

    @property
    def latency(self) -> float | None:
        stream = self._supervisor.stream
        return float(stream.latency) if stream is not None else None

    def start(self) -> None:
        """Open the device (in the background; faults are ``error`` events)."""
        if self._closed:
            raise RuntimeError(f"{self.label} is closed")
        self._loop = asyncio.get_running_loop()
        self._supervisor.start()

    async def wait_open(self) -> None:
        """Open the device if not yet, and wait until its stream runs (use with
        ``asyncio.timeout``)."""
        self.start()
        await self._supervisor.wait_open()

    async def switch_device(self, device: DeviceSpec) -> DeviceInfo:
        """Use another device from now on (the session keeps streaming; buffered output plays
        on the new one). Raises :class:`DeviceNotFoundError` and keeps the current device if
        there is none such."""
        return await self._supervisor.switch(device)
