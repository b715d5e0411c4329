"""The part every windowed VAD shares: resample and rebuffer input frames into fixed windows,
turn per-window speech probabilities into START / INFERENCE_DONE / END events.

A concrete stream only implements :meth:`WindowedVADStream._infer` (probabilities for a batch of
windows). The Silero plugin reuses this module too."""

from __future__ import annotations

import asyncio
import logging
from abc import abstractmethod
from dataclasses import dataclass

import numpy as np
from livekit import rtc

from voicetui.agents._stream import FlushSentinel
from voicetui.agents.audio import Resampler, frame_mono, make_frame, to_float32
from voicetui.agents.exceptions import VADError
from voicetui.agents.utils.aio import now
from voicetui.agents.vad import VAD, VADEvent, VADEventType, VADStream

logger = logging.getLogger("voicetui.plugins.vad")

_EPS = 1e-6  # durations are float sums of window lengths: 10 x 0.01 < 0.1
_MAX_BUFFERED_SPEECH = 60.0
"""Seconds of utterance audio kept for END_OF_SPEECH; a longer utterance is truncated."""


@dataclass(frozen=True)
class SegmenterOptions:
    activation_threshold: float
    deactivation_threshold: float
    min_speech_duration: float
    min_silence_duration: float
    prefix_padding_duration: float

    def __post_init__(self) -> None:
        if not 0.0 < self.activation_threshold <= 1.0:
            raise ValueError("activation_threshold must be in (0, 1]")
        if not 0.0 < self.deactivation_threshold <= self.activation_threshold:
            raise ValueError("deactivation_threshold must be in (0, activation_threshold]")
        for name in ("min_speech_duration", "min_silence_duration", "prefix_padding_duration"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0")


class _Rebuffer:
    """Mono-downmixes frames, resamples them to the model rate and cuts fixed windows. Also keeps
    the input-rate audio and hands out the slice matching each window (for the events' frames)."""

    def __init__(self, model_rate: int, window: int) -> None:
        self._model_rate = model_rate
        self._window = window
        self.input_rate = 0
        self._resampler: Resampler | None = None
        self._model_parts: list[np.ndarray] = []  # float32 at the model rate, not windowed yet
        self._in_parts: list[np.ndarray] = []  # int16 at the input rate, not handed out yet
        self._in_base = 0  # absolute input-sample index of the first sample in _in_parts
        self._windows = 0  # windows handed out so far
        self._model_len = 0  # samples in _model_parts

    @property
    def has_window(self) -> bool:
        """At least one complete window is buffered."""
        return self._model_len >= self._window

    def push(self, frame: rtc.AudioFrame) -> None:
        if self.input_rate == 0:
            self.input_rate = frame.sample_rate
            if frame.sample_rate != self._model_rate:
                self._resampler = Resampler(
                    frame.sample_rate, self._model_rate, dtype="float32", quality="MQ"
                )
        elif frame.sample_rate != self.input_rate:
            raise VADError(
                f"input sample rate changed from {self.input_rate} to {frame.sample_rate} Hz "
                "mid-stream; open a new VAD stream",
                recoverable=True,
            )
        mono = frame_mono(frame)
        self._in_parts.append(mono)
        audio = to_float32(mono)
        if self._resampler is not None:
            audio = self._resampler.push(audio)
        self._model_parts.append(audio)
        self._model_len += len(audio)

    def take_windows(self) -> tuple[np.ndarray, list[np.ndarray]]:
        """All complete windows, shape (n, window) float32 in [-1, 1], with their input-rate
        int16 audio."""
        model_buf = _join(self._model_parts, np.float32)
        in_buf = _join(self._in_parts, np.int16)
        n = len(model_buf) // self._window
        windows = model_buf[: n * self._window].reshape(n, self._window)
        self._model_parts = [model_buf[n * self._window :]]
        self._model_len = len(self._model_parts[0])
        chunks: list[np.ndarray] = []
        ratio = self.input_rate / self._model_rate if self.input_rate else 1.0
        start = 0
        for _ in range(n):
            self._windows += 1
            end = round(self._windows * self._window * ratio) - self._in_base
            end = min(max(end, start), len(in_buf))
            chunks.append(in_buf[start:end])
            start = end
        self._in_parts = [in_buf[start:]]
        self._in_base += start
        return windows, chunks


class _Segmenter:
    """The speech state machine: per-window probabilities in, VAD events out."""

    def __init__(self, opts: SegmenterOptions, model_rate: int, window: int) -> None:
        self._opts = opts
        self._model_rate = model_rate
        self._window = window
        self._window_dur = window / model_rate
        self._samples = 0  # model-rate samples processed
        self._speaking = False
        self._speech_run = 0.0  # consecutive seconds above threshold
        self._silence_run = 0.0  # consecutive seconds below threshold
        self._pub_speech = 0.0  # seconds since START (while speaking)
        self._pub_silence = 0.0  # seconds since END (while not speaking)
        self._buf: list[np.ndarray] = []  # input-rate audio: padding + (candidate) speech
        self._buf_len = 0
        self._truncated = False

    @property
    def speaking(self) -> bool:
        return self._speaking

    def feed(
        self,
        prob: float,
        chunk: np.ndarray,
        input_rate: int,
        inference_duration: float,
    ) -> list[VADEvent]:
        o = self._opts
        wd = self._window_dur
        self._samples += self._window
        events: list[VADEvent] = []
        self._append(chunk, input_rate)
        if self._speaking:
            self._pub_speech += wd
        else:
            self._pub_silence += wd
        threshold = o.deactivation_threshold if self._speaking else o.activation_threshold
        if prob >= threshold:
            self._speech_run += wd
            self._silence_run = 0.0
            if not self._speaking and self._speech_run >= o.min_speech_duration - _EPS:
                self._speaking = True
                self._pub_speech = self._speech_run
                self._pub_silence = 0.0
                events.append(self._event(VADEventType.START_OF_SPEECH, prob, 0.0, input_rate))
        else:
            self._silence_run += wd
            self._speech_run = 0.0
            if not self._speaking:
                self._keep_padding(input_rate)
            elif self._silence_run >= o.min_silence_duration - _EPS:
                self._speaking = False
                self._pub_silence = self._silence_run
                events.append(self._event(VADEventType.END_OF_SPEECH, prob, 0.0, input_rate))
                self._pub_speech = 0.0
                self._keep_padding(input_rate)
        done = self._event(VADEventType.INFERENCE_DONE, prob, inference_duration, input_rate)
        if self._speaking and chunk.size:
            # its window's audio, for a listener of shared events following the utterance (not
            # between utterances, where nobody needs it: ~30 frames a second saved while idle)
            done.frames = [make_frame(chunk, input_rate)]
        events.append(done)
        return events

    def finish(self, input_rate: int) -> list[VADEvent]:
        """Input ended: close an utterance still open, so its audio is not lost."""
        if not self._speaking:
            return []
        self._speaking = False
        self._pub_silence = self._silence_run
        ev = self._event(VADEventType.END_OF_SPEECH, 0.0, 0.0, input_rate)
        self._pub_speech = 0.0
        self._buf.clear()
        self._buf_len = 0
        return [ev]

    def _event(
        self, type_: VADEventType, prob: float, inference_duration: float, input_rate: int
    ) -> VADEvent:
        """START carries the audio so far, END the whole utterance (padding included); END's
        ``speech_duration`` is the utterance's length and ``silence_duration`` the silence
        after it (the speech really ended that long before the event). While speaking, an
        INFERENCE_DONE's ``silence_duration`` is the pause so far (0 while the voice goes on),
        which lets a listener act on a pause before it becomes an end of speech."""
        frames: list[rtc.AudioFrame] = []
        if type_ != VADEventType.INFERENCE_DONE and self._buf_len and input_rate:
            frames = [make_frame(np.concatenate(self._buf), input_rate)]
        ending = type_ == VADEventType.END_OF_SPEECH
        return VADEvent(
            type=type_,
            samples_index=self._samples,
            timestamp=now(),
            speech_duration=self._pub_speech if self._speaking or ending else 0.0,
            silence_duration=(
                self._pub_silence
                if not self._speaking
                else self._silence_run
                if type_ == VADEventType.INFERENCE_DONE
                else 0.0
            ),
            frames=frames,
            probability=prob,
            inference_duration=inference_duration,
            speaking=self._speaking,
        )

    def _append(self, chunk: np.ndarray, input_rate: int) -> None:
        if not chunk.size:
            return
        if self._buf_len + chunk.size > _MAX_BUFFERED_SPEECH * input_rate:
            if not self._truncated:
                logger.warning("utterance longer than %.0fs: truncating", _MAX_BUFFERED_SPEECH)
                self._truncated = True
            return
        self._buf.append(chunk)
        self._buf_len += chunk.size

    def _keep_padding(self, input_rate: int) -> None:
        """Drop buffered audio older than the prefix padding."""
        self._truncated = False
        keep = round(self._opts.prefix_padding_duration * input_rate)
        excess = self._buf_len - keep
        # drop whole chunks from the front, then cut the first one (a view, no copy): this
        # runs on every window of silence
        while excess > 0 and self._buf:
            first = self._buf[0]
            if first.size <= excess:
                del self._buf[0]
                excess -= first.size
                self._buf_len -= first.size
            else:
                self._buf[0] = first[excess:]
                self._buf_len -= excess
                excess = 0


class WindowedVADStream(VADStream):
    """Reads frames, cuts model windows, runs :meth:`_infer` on every batch of windows available
    and emits the events. Input that arrives during an inference is batched for the next one."""

    def __init__(self, vad: VAD, *, opts: SegmenterOptions, model_rate: int, window: int) -> None:
        self._rebuffer = _Rebuffer(model_rate, window)
        self._segmenter = _Segmenter(opts, model_rate, window)
        super().__init__(vad)

    @abstractmethod
    async def _infer(self, windows: np.ndarray) -> np.ndarray:
        """Speech probabilities (shape (n,)) of ``windows`` (shape (n, window), float32)."""

    async def _run(self) -> None:
        # Frames are rebuffered as they are pushed (cheap, synchronous); this task wakes only
        # when a whole window is ready, and windows that arrive during an inference are
        # batched into the next one.
        wake = asyncio.Event()
        ended = False
        failure: list[Exception] = []

        def take(item: rtc.AudioFrame | FlushSentinel) -> None:
            if isinstance(item, FlushSentinel) or failure:
                return
            try:
                self._rebuffer.push(item)
            except Exception as e:
                failure.append(e)
                wake.set()
                return
            if self._rebuffer.has_window:
                wake.set()

        def on_close() -> None:
            nonlocal ended
            ended = True
            wake.set()

        self._input.bind(take, on_close)
        try:
            while True:
                await wake.wait()
                wake.clear()
                if failure:
                    raise failure[0]
                finished = ended
                windows, chunks = self._rebuffer.take_windows()
                if len(windows):
                    await self._process(windows, chunks)
                if finished:
                    for ev in self._segmenter.finish(self._rebuffer.input_rate):
                        self._emit(ev)
                    return
        finally:
            self._input.unbind()

    async def _process(self, windows: np.ndarray, chunks: list[np.ndarray]) -> None:
        started = _perf()
        probs = await self._infer(windows)
        per_window = (_perf() - started) / len(windows)
        rate = self._rebuffer.input_rate
        for prob, chunk in zip(probs.tolist(), chunks, strict=True):
            for ev in self._segmenter.feed(float(prob), chunk, rate, per_window):
                self._emit(ev)


def _join(parts: list[np.ndarray], dtype: type[np.generic]) -> np.ndarray:
    if len(parts) == 1:
        return parts[0]
    return np.concatenate(parts) if parts else np.zeros(0, dtype=dtype)


def _perf() -> float:
    import time

    return time.perf_counter()
