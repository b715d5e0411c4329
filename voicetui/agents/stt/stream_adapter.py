"""Makes a non-streaming STT stream: a VAD cuts utterances, each is recognized when it ends.

Speculative recognition: the VAD only ends an utterance after a window of silence
(``min_silence_duration``, 0.4 s for Silero), and a non-streaming STT only starts then. So when
the VAD reports that a pause has lasted ``speculate_after`` seconds while the user is still
"speaking", the utterance so far is recognized right away; if the VAD's end of speech follows
without speech resuming, that result is the final transcript, ready as the silence window ends
instead of one recognition later. If speech resumes, the speculative result is dropped (and its
request cancelled) and the next pause speculates again.

Preflight (``preflight=True``): as soon as a speculative result is ready, it is also emitted as
a ``PREFLIGHT_TRANSCRIPT``, so that a session with preemptive generation starts its reply then,
while the VAD's silence window still runs (~0.15 s before its end of speech with Silero's
0.4 s window). When that speculation is dropped because speech resumed, an empty preflight
withdraws it.

That needs a VAD that reports the pause while speaking (``silence_duration`` of
``INFERENCE_DONE`` events with ``speaking=True``, as the Silero, webrtcvad and fake VADs do) and
emits one ``INFERENCE_DONE`` per ``capabilities.update_interval`` of audio (which places the
events on the audio timeline). Any other VAD just gets no speculation. The audio of a
speculation is checked against the utterance the VAD returns at its end: if their lengths
disagree, the speculation is not used.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import cast

from livekit import rtc

from .._stream import FlushSentinel
from ..audio import as_array, frame_duration, frames_duration, make_frame
from ..types import DEFAULT_API_CONNECT_OPTIONS, APIConnectOptions
from ..utils.aio import TaskSet
from ..vad import VAD, VADEvent, VADEventType
from .stt import STT, SpeechEvent, SpeechEventType, SpeechStream, STTCapabilities

logger = logging.getLogger("voicetui.agents.stt")

_ALIGNMENT_TOLERANCE = 0.05  # seconds the speculative and the final utterance may differ by
_IDLE_AUDIO_KEPT = 3.0  # seconds of audio kept while nobody speaks (covers the prefix padding)
_MAX_AUDIO_KEPT = 90.0  # an utterance longer than that is not speculated on (the VAD keeps 60 s)


class StreamAdapter(STT):
    """``speculate_after``: seconds of a pause after which the utterance so far is recognized
    ahead of the VAD's end of speech (None: recognize only at the end of speech)."""

    def __init__(
        self,
        *,
        stt: STT,
        vad: VAD,
        speculate_after: float | None = 0.1,
        preflight: bool = True,
    ) -> None:
        super().__init__(capabilities=STTCapabilities(streaming=True, interim_results=False))
        if speculate_after is not None and speculate_after <= 0:
            raise ValueError("speculate_after must be None or > 0")
        self._wrapped = stt
        self._vad = vad
        self._speculate_after = speculate_after
        self._preflight = preflight
        self._label = f"StreamAdapter({stt.label})"
        self.speculations = _SpeculationStats()
        """How the speculative recognitions fared (for benchmarks and logs)."""

    @property
    def wrapped_stt(self) -> STT:
        return self._wrapped

    @property
    def model(self) -> str:
        return self._wrapped.model

    async def _recognize_impl(
        self, buffer: list[rtc.AudioFrame], *, language: str | None, conn_options: APIConnectOptions
    ) -> SpeechEvent:
        return await self._wrapped.recognize(buffer, language=language, conn_options=conn_options)

    def stream(
        self,
        *,
        language: str | None = None,
        conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS,
    ) -> SpeechStream:
        return _AdapterStream(self, language=language, conn_options=conn_options)


class _SpeculationStats:
    def __init__(self) -> None:
        self.started = 0
        self.preflights = 0
        """Emitted as a preflight transcript (ready before the end of speech)."""
        self.used = 0
        self.dropped = 0
        """Dropped because speech resumed (or the stream ended)."""
        self.misaligned = 0
        """Not used because their audio did not match the VAD's utterance."""

    def __repr__(self) -> str:
        return (
            f"speculations(started={self.started}, preflights={self.preflights}, "
            f"used={self.used}, dropped={self.dropped}, misaligned={self.misaligned})"
        )


class _AudioLog:
    """The audio given to the VAD, placed on a timeline (seconds since the stream began)."""

    def __init__(self) -> None:
        self._frames: deque[tuple[float, rtc.AudioFrame]] = deque()
        self.end = 0.0

    def push(self, frame: rtc.AudioFrame) -> None:
        self._frames.append((self.end, frame))
        self.end += frame_duration(frame)

    def between(self, start: float, end: float) -> list[rtc.AudioFrame]:
        """The audio from ``start`` to ``end`` (frames at the edges cut to fit)."""
        out: list[rtc.AudioFrame] = []
        for at, frame in self._frames:
            d = frame_duration(frame)
            if at + d <= start or at >= end:
                continue
            n = frame.samples_per_channel
            first = max(0, round((start - at) * frame.sample_rate))
            last = min(n, round((end - at) * frame.sample_rate))
            if first >= last:
                continue
            if first > 0 or last < n:
                cut = make_frame(as_array(frame)[first:last], frame.sample_rate, frame.num_channels)
                cut.userdata.update(frame.userdata)
                frame = cut
            out.append(frame)
        return out

    def forget_before(self, position: float) -> None:
        while self._frames and self._frames[0][0] + frame_duration(self._frames[0][1]) <= position:
            self._frames.popleft()


class _Speculation:
    def __init__(self, task: asyncio.Task[SpeechEvent], duration: float) -> None:
        self.task = task
        self.duration = duration
        """Seconds of the utterance (with its prefix padding) it recognizes."""
        self.preflighted = False
        """Its result went out as a preflight transcript."""


class _AdapterStream(SpeechStream):
    async def _run(self) -> None:
        adapter = cast(StreamAdapter, self._stt)
        vad_stream = adapter._vad.stream()
        interval = adapter._vad.capabilities.update_interval
        tasks = TaskSet("stt.StreamAdapter")
        stats = adapter.speculations
        # utterances are recognized concurrently but their results are emitted in order
        order: asyncio.Queue[asyncio.Task[SpeechEvent] | None] = asyncio.Queue()
        log = _AudioLog()
        position = 0.0  # the audio the VAD has judged so far (end of its last inference)
        utterance_start: float | None = None  # where the current utterance's audio begins
        speculation: _Speculation | None = None

        def recognize(frames: list[rtc.AudioFrame]) -> asyncio.Task[SpeechEvent]:
            return tasks.create(
                adapter._wrapped.recognize(
                    frames, language=self._language, conn_options=self._conn_options
                )
            )

        def drop_speculation() -> None:
            nonlocal speculation
            if speculation is not None:
                speculation.task.cancel()
                stats.dropped += 1
                if speculation.preflighted:  # withdrawn: the user went on
                    self._emit(SpeechEvent(SpeechEventType.PREFLIGHT_TRANSCRIPT))
                speculation = None

        def on_speculated(spec: _Speculation) -> None:
            # still the pending speculation (not dropped, not yet the final): preflight it
            if speculation is not spec or spec.task.cancelled() or spec.task.exception():
                return
            result = spec.task.result()
            if result.text.strip():
                spec.preflighted = True
                stats.preflights += 1
                self._emit(
                    SpeechEvent(
                        SpeechEventType.PREFLIGHT_TRANSCRIPT,
                        alternatives=result.alternatives,
                        request_id=result.request_id,
                    )
                )

        async def final_of(spec: _Speculation, frames: list[rtc.AudioFrame]) -> SpeechEvent:
            try:
                return await spec.task
            except asyncio.CancelledError:
                current = asyncio.current_task()
                if not spec.task.cancelled() or current is None or current.cancelling():
                    raise  # this stream is closing
            except Exception as e:  # the speculative attempt failed: recognize normally
                logger.debug("speculative recognition failed (%s); recognizing again", e)
            return await adapter._wrapped.recognize(
                frames, language=self._language, conn_options=self._conn_options
            )

        def on_vad_event(ev: VADEvent) -> None:
            nonlocal position, utterance_start, speculation
            if ev.type == VADEventType.START_OF_SPEECH:
                self._emit(SpeechEvent(SpeechEventType.START_OF_SPEECH))
                # the START's own INFERENCE_DONE comes next: its window ends at position+interval
                utterance_start = position + interval - frames_duration(ev.frames)
            elif ev.type == VADEventType.INFERENCE_DONE:
                position += interval
                if utterance_start is None:
                    log.forget_before(position - _IDLE_AUDIO_KEPT)
                    return
                log.forget_before(position - _MAX_AUDIO_KEPT)
                if not ev.speaking:
                    return
                after = adapter._speculate_after
                pausing = after is not None and ev.silence_duration >= after
                if speculation is not None and not pausing:
                    drop_speculation()  # the user speaks on
                elif speculation is None and pausing:
                    # the utterance up to the audio the VAD has judged (not what came since)
                    frames = log.between(utterance_start, position)
                    stats.started += 1
                    new = _Speculation(recognize(frames), frames_duration(frames))
                    speculation = new
                    if adapter._preflight:
                        new.task.add_done_callback(lambda _: on_speculated(new))
            elif ev.type == VADEventType.END_OF_SPEECH:
                spec, speculation = speculation, None
                task: asyncio.Task[SpeechEvent] | None = None
                if spec is not None:
                    # the speculation covers the utterance up to some point in its final silence
                    final = frames_duration(ev.frames)
                    silence_heard = ev.silence_duration
                    if (
                        final - silence_heard - _ALIGNMENT_TOLERANCE
                        <= spec.duration
                        <= final + _ALIGNMENT_TOLERANCE
                    ):
                        stats.used += 1
                        task = tasks.create(final_of(spec, ev.frames))
                    else:
                        stats.misaligned += 1
                        logger.debug(
                            "speculation of %.2fs does not match the utterance of %.2fs",
                            spec.duration,
                            final,
                        )
                        spec.task.cancel()
                order.put_nowait(task if task is not None else recognize(ev.frames))
                utterance_start = None
                log.forget_before(position - _IDLE_AUDIO_KEPT)

        def take(item: rtc.AudioFrame | FlushSentinel) -> None:
            if isinstance(item, FlushSentinel):
                vad_stream.flush()
            else:
                log.push(item)
                vad_stream.push_frame(item)

        async def forward_input() -> None:
            # frames go through to the VAD as they are pushed (no task wake-up per frame)
            await self._consume_input(take)
            vad_stream.end_input()

        async def read_vad() -> None:
            await vad_stream.pipe_to(on_vad_event)  # events handled as the VAD emits them
            drop_speculation()
            order.put_nowait(None)

        async def emit_results() -> None:
            while (task := await order.get()) is not None:
                result = await task
                if result.text.strip():
                    self._emit(
                        SpeechEvent(
                            SpeechEventType.FINAL_TRANSCRIPT,
                            alternatives=result.alternatives,
                            request_id=result.request_id,
                        )
                    )
                self._emit(SpeechEvent(SpeechEventType.END_OF_SPEECH))

        try:
            await asyncio.gather(forward_input(), read_vad(), emit_results())
        finally:
            await tasks.aclose()
            await vad_stream.aclose()
