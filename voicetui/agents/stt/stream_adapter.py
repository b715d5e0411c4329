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

Shared VAD events: in a session the same audio already goes through the session's VAD stream.
Given ``vad_events`` (see :class:`SharedVADEvents`), the adapter's streams listen to that
stream's events instead of running ``vad`` a second time (no second resampler, segmenter or
inference): the utterance's audio then comes from the events themselves (START_OF_SPEECH's
frames, then each INFERENCE_DONE's window, END_OF_SPEECH's whole utterance), and the audio
pushed into the stream is not used. The session does that only when the STT hears exactly what
the VAD hears (the agent keeps the default ``stt_node``). Input that ends mid-utterance drops
that utterance (the session ends its STT input only to forget the turn, or to close).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable, Coroutine
from typing import Any, cast

from livekit import rtc

from .._stream import FlushSentinel
from ..audio import as_array, frame_duration, frames_duration, make_frame
from ..types import DEFAULT_API_CONNECT_OPTIONS, APIConnectOptions
from ..utils.aio import TaskSet, cancel_and_wait
from ..vad import VAD, SharedVADEvents, VADEvent, VADEventType
from .stt import STT, SpeechEvent, SpeechEventType, SpeechStream, STTCapabilities

logger = logging.getLogger("voicetui.agents.stt")

_ALIGNMENT_TOLERANCE = 0.05  # seconds the speculative and the final utterance may differ by
_IDLE_AUDIO_KEPT = 3.0  # seconds of audio kept while nobody speaks (covers the prefix padding)
_MAX_AUDIO_KEPT = 90.0  # an utterance longer than that is not speculated on (the VAD keeps 60 s)


class StreamAdapter(STT):
    """``speculate_after``: seconds of a pause after which the utterance so far is recognized
    ahead of the VAD's end of speech (None: recognize only at the end of speech).
    ``vad_events``: the events of a stream of ``vad`` that already hears the audio this
    adapter's streams will be given; they listen to those instead of running ``vad`` again."""

    def __init__(
        self,
        *,
        stt: STT,
        vad: VAD,
        speculate_after: float | None = 0.1,
        preflight: bool = True,
        vad_events: SharedVADEvents | None = None,
    ) -> None:
        super().__init__(capabilities=STTCapabilities(streaming=True, interim_results=False))
        if speculate_after is not None and speculate_after <= 0:
            raise ValueError("speculate_after must be None or > 0")
        self._wrapped = stt
        self._vad = vad
        self._vad_events = vad_events
        self._speculate_after = speculate_after
        self._preflight = preflight
        self._label = f"StreamAdapter({stt.label})"
        self.speculations = _SpeculationStats()
        """How the speculative recognitions fared (for benchmarks and logs)."""

    @property
    def wrapped_stt(self) -> STT:
        return self._wrapped

    @property
    def shares_vad_events(self) -> bool:
        """Its streams listen to shared VAD events instead of running their own VAD."""
        return self._vad_events is not None

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
    """Standalone: the audio given to the adapter's own VAD, placed on a timeline (seconds
    since the stream began); the VAD's events are placed on it by counting windows."""

    def __init__(self, interval: float) -> None:
        self._frames: deque[tuple[float, rtc.AudioFrame]] = deque()
        self._interval = interval
        self.end = 0.0
        self._position = 0.0  # the audio the VAD has judged so far (end of its last inference)
        self._start: float | None = None  # where the current utterance's audio begins

    def push(self, frame: rtc.AudioFrame) -> None:
        self._frames.append((self.end, frame))
        self.end += frame_duration(frame)

    def on_start(self, ev: VADEvent) -> None:
        # the START's own INFERENCE_DONE comes next: its window ends at position+interval
        self._start = self._position + self._interval - frames_duration(ev.frames)

    def on_inference(self, ev: VADEvent) -> None:
        self._position += self._interval
        keep = _MAX_AUDIO_KEPT if self._start is not None else _IDLE_AUDIO_KEPT
        self._forget_before(self._position - keep)

    def on_end(self) -> None:
        self._start = None
        self._forget_before(self._position - _IDLE_AUDIO_KEPT)

    def so_far(self) -> list[rtc.AudioFrame] | None:
        """The utterance up to the audio the VAD has judged (not what came since)."""
        if self._start is None:
            return None
        return self._between(self._start, self._position)

    def _between(self, start: float, end: float) -> list[rtc.AudioFrame]:
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

    def _forget_before(self, position: float) -> None:
        while self._frames and self._frames[0][0] + frame_duration(self._frames[0][1]) <= position:
            self._frames.popleft()


class _EventAudio:
    """Shared VAD events: the utterance's audio from the events themselves — START's frames
    (up to the end of its window), then every later window's INFERENCE_DONE frames."""

    def __init__(self) -> None:
        self._frames: list[rtc.AudioFrame] | None = None  # None: no utterance
        self._duration = 0.0
        self._start_index = 0
        self._complete = True  # every window since START came with its audio

    def push(self, frame: rtc.AudioFrame) -> None:
        pass  # (the VAD's events carry the audio)

    def on_start(self, ev: VADEvent) -> None:
        self._frames = list(ev.frames)
        self._duration = frames_duration(ev.frames)
        self._start_index = ev.samples_index
        self._complete = True

    def on_inference(self, ev: VADEvent) -> None:
        if self._frames is None or ev.samples_index <= self._start_index:
            return  # (START's own window is in its frames already)
        if not ev.frames or self._duration > _MAX_AUDIO_KEPT:
            self._complete = False
            return
        self._frames.extend(ev.frames)
        self._duration += frames_duration(ev.frames)

    def on_end(self) -> None:
        self._frames = None

    def so_far(self) -> list[rtc.AudioFrame] | None:
        if self._frames is None or not self._complete:
            return None  # (a VAD whose INFERENCE_DONE carry no audio: no speculation)
        return list(self._frames)


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
        shared = adapter._vad_events
        tasks = TaskSet("stt.StreamAdapter")
        stats = adapter.speculations
        # utterances are recognized concurrently but their results are emitted in order
        order: asyncio.Queue[asyncio.Task[SpeechEvent] | None] = asyncio.Queue()
        audio = (
            _EventAudio()
            if shared is not None
            else _AudioLog(adapter._vad.capabilities.update_interval)
        )
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
            nonlocal speculation
            if ev.type == VADEventType.START_OF_SPEECH:
                drop_speculation()  # (a shared stream restarted mid-utterance: start afresh)
                self._emit(SpeechEvent(SpeechEventType.START_OF_SPEECH))
                audio.on_start(ev)
            elif ev.type == VADEventType.INFERENCE_DONE:
                audio.on_inference(ev)
                if not ev.speaking:
                    return
                after = adapter._speculate_after
                pausing = after is not None and ev.silence_duration >= after
                if speculation is not None and not pausing:
                    drop_speculation()  # the user speaks on
                elif speculation is None and pausing and (frames := audio.so_far()) is not None:
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
                audio.on_end()

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
            if shared is not None:
                listen = self._listen(shared, on_vad_event)
            else:
                listen = self._run_vad(adapter._vad, audio, on_vad_event)
            # (both in the task set: if one fails, closing the set cancels the other)
            await asyncio.gather(
                tasks.create(self._end_after(listen, drop_speculation, order)),
                tasks.create(emit_results()),
            )
        finally:
            await tasks.aclose()

    @staticmethod
    async def _end_after(
        listen: Coroutine[Any, Any, None],
        drop_speculation: Callable[[], None],
        order: asyncio.Queue[asyncio.Task[SpeechEvent] | None],
    ) -> None:
        await listen
        drop_speculation()
        order.put_nowait(None)

    async def _run_vad(
        self, vad: VAD, audio: _AudioLog | _EventAudio, on_event: Callable[[VADEvent], None]
    ) -> None:
        """Standalone: the pushed audio goes through a stream of the adapter's own VAD, until
        the input ends and the VAD has said its last."""
        vad_stream = vad.stream()

        def take(item: rtc.AudioFrame | FlushSentinel) -> None:
            if isinstance(item, FlushSentinel):
                vad_stream.flush()
            else:
                audio.push(item)
                vad_stream.push_frame(item)

        async def forward_input() -> None:
            # frames go through to the VAD as they are pushed (no task wake-up per frame)
            await self._consume_input(take)
            vad_stream.end_input()

        try:
            # events are handled as the VAD emits them (no task wake-up per event)
            await asyncio.gather(forward_input(), vad_stream.pipe_to(on_event))
        finally:
            await vad_stream.aclose()

    async def _listen(self, shared: SharedVADEvents, on_event: Callable[[VADEvent], None]) -> None:
        """Shared: the events of the session's VAD stream, until the input ends. The pushed
        audio is not needed (the events carry it); an error in handling an event ends this
        stream with it, not the session's VAD."""
        failed: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def listener(ev: VADEvent) -> None:
            if failed.done():
                return
            try:
                on_event(ev)
            except Exception as e:
                failed.set_exception(e)

        unsubscribe = shared.subscribe(listener)
        consume = asyncio.ensure_future(self._consume_input(lambda _item: None))
        try:
            await asyncio.wait({consume, failed}, return_when=asyncio.FIRST_COMPLETED)
            if failed.done():
                failed.result()  # raises
            consume.result()
        finally:
            unsubscribe()
            await cancel_and_wait(consume)
            if not failed.done():
                failed.cancel()
