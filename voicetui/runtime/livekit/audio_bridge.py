"""Local mode for a LiveKit agent: the machine's microphone (echo-cancelled) to the agent and
the agent's audio to the speaker, both at the console wire's 48 kHz.

The agent waits for ``audio_playback_finished`` after each ``audio_playback_flush`` (its
playout): this sends it when the speaker has played the segment out, or at once after a
``audio_playback_clear`` (interrupted)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
from livekit import rtc
from livekit.protocol.agent_pb import agent_session as pb

from ...io.local import LocalAudio, resolve_device
from .._session_ops import LevelsCoalescer
from ..api import Notice, RuntimeEvent
from . import wire

if TYPE_CHECKING:
    from ...recording import Recorder

logger = logging.getLogger("voicetui.livekit")
LEVELS_INTERVAL = 0.05


class AudioBridge:
    def __init__(
        self,
        *,
        send: Callable[[pb.AgentSessionMessage], None],
        emit: Callable[[RuntimeEvent], None],
        recorder: Callable[[], Recorder | None],
        input_device: str | int | None = None,
        output_device: str | int | None = None,
        echo_cancellation: bool = True,
    ) -> None:
        self._send = send
        self._emit = emit
        self._recorder = recorder
        self._devices = (input_device, output_device)
        self._echo_cancellation = echo_cancellation
        self._audio: LocalAudio | None = None
        self._mic_task: asyncio.Task[None] | None = None
        self._play_task: asyncio.Task[None] | None = None
        self._play_queue: asyncio.Queue[rtc.AudioFrame | None] = asyncio.Queue()
        self._segment: int | None = None
        self._segment_at = 0.0
        self._segment_samples = 0
        self.description = "mic: default / speaker: default"
        self.muted = False

    async def start(self) -> None:
        mic = resolve_device(self._devices[0], "input")
        speaker = resolve_device(self._devices[1], "output")
        self.description = f"mic: {mic.name} / speaker: {speaker.name}"
        audio = LocalAudio(
            input_device=mic.index,
            output_device=speaker.index,
            input_sample_rate=wire.WIRE_SAMPLE_RATE,
            output_sample_rate=wire.WIRE_SAMPLE_RATE,
            echo_cancellation=self._echo_cancellation,
        )
        loop = asyncio.get_running_loop()
        levels = LevelsCoalescer(self._emit, LEVELS_INTERVAL)

        def on_levels(ev: Any) -> None:
            loop.call_soon_threadsafe(
                lambda: levels.report(
                    ev.direction,
                    ev.rms_dbfs,
                    ev.peak_dbfs,
                    echo_cancelling=ev.echo_cancelling,
                    erle_db=ev.erle_db,
                )
            )

        def on_error(ev: Any) -> None:
            loop.call_soon_threadsafe(self._emit, Notice(level="warning", message=ev.message))

        audio.events.on("levels", on_levels)
        audio.events.on("error", on_error)
        audio.output.on(
            "playback_finished",
            lambda _ev: loop.call_soon_threadsafe(self._send, wire.playback_finished()),
        )
        audio.start()
        self._audio = audio
        self._mic_task = asyncio.create_task(self._pump_mic(audio), name="lk-agent.mic")
        self._play_task = asyncio.create_task(self._pump_speaker(audio), name="lk-agent.speaker")

    async def _pump_mic(self, audio: LocalAudio) -> None:
        loop = asyncio.get_running_loop()
        async for frame in audio.input:
            if self.muted:
                continue
            pcm = bytes(frame.data)
            self._send(wire.audio_frame(pcm, sample_rate=frame.sample_rate))
            rec = self._recorder()
            if rec is not None:
                samples = np.frombuffer(pcm, dtype=np.int16)
                rec.push_user_audio(loop.time(), samples, frame.sample_rate, captured=True)

    async def _pump_speaker(self, audio: LocalAudio) -> None:
        while True:
            frame = await self._play_queue.get()
            if frame is None:
                audio.output.flush()
                self._end_segment()
                continue
            await audio.output.capture_frame(frame)
            self._record_agent(frame)

    def _record_agent(self, frame: rtc.AudioFrame) -> None:
        rec = self._recorder()
        if rec is None:
            return
        if self._segment is None:
            self._segment = rec.next_segment_id()
            self._segment_at = rec.rel(asyncio.get_running_loop().time())
            self._segment_samples = 0
        start = self._segment_at + self._segment_samples / frame.sample_rate
        samples = np.frombuffer(bytes(frame.data), dtype=np.int16)
        rec.push_agent_audio(self._segment, start, samples, frame.sample_rate, False)
        self._segment_samples += len(samples)

    def _end_segment(self) -> None:
        rec = self._recorder()
        if rec is not None and self._segment is not None:
            rec.end_agent_segment(self._segment, None, wire.WIRE_SAMPLE_RATE)
        self._segment = None

    def play(self, frame: pb.AgentSessionMessage.ConsoleIO.AudioFrame) -> None:
        self._play_queue.put_nowait(
            rtc.AudioFrame(
                data=frame.data,
                sample_rate=frame.sample_rate or wire.WIRE_SAMPLE_RATE,
                num_channels=frame.num_channels or 1,
                samples_per_channel=frame.samples_per_channel,
            )
        )

    def flush(self) -> None:
        self._play_queue.put_nowait(None)

    def clear(self) -> None:
        """The agent was interrupted: drop what is queued and what the speaker holds."""
        while not self._play_queue.empty():
            self._play_queue.get_nowait()
        if self._audio is not None:
            self._audio.output.clear_buffer()
        self._end_segment()

    async def aclose(self) -> None:
        for task in (self._mic_task, self._play_task):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        if self._audio is not None:
            await self._audio.aclose()
            self._audio = None
