"""Deterministic VAD and STT for scripted audio (see :class:`FakeAudioInput`): the VAD detects
speech by energy, the STT reads the transcript the fake input attached to voice frames."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from livekit import rtc

from .._stream import FlushSentinel
from ..audio import frame_duration, rms_dbfs
from ..exceptions import STTError
from ..stt import STT, SpeechData, SpeechEvent, SpeechEventType, SpeechStream, STTCapabilities
from ..types import DEFAULT_API_CONNECT_OPTIONS, APIConnectOptions
from ..utils.aio import now
from ..vad import VAD, VADCapabilities, VADEvent, VADEventType, VADStream


class FakeVAD(VAD):
    """Speech = frames louder than ``threshold_dbfs``; start after ``min_speech_duration`` of
    speech, end after ``min_silence_duration`` of silence."""

    def __init__(
        self,
        *,
        threshold_dbfs: float = -40.0,
        min_speech_duration: float = 0.05,
        min_silence_duration: float = 0.3,
    ) -> None:
        super().__init__(capabilities=VADCapabilities(update_interval=0.01))
        self.threshold_dbfs = threshold_dbfs
        self.min_speech_duration = min_speech_duration
        self.min_silence_duration = min_silence_duration
        self.streams_opened = 0
        self.audio_judged = 0.0
        """Seconds of audio its streams have judged (all of them together)."""

    def stream(self) -> VADStream:
        self.streams_opened += 1
        return _FakeVADStream(self)


class _FakeVADStream(VADStream):
    async def _run(self) -> None:
        vad = self._vad
        assert isinstance(vad, FakeVAD)
        speaking = False
        speech = silence = 0.0
        samples = 0
        frames: list[rtc.AudioFrame] = []
        async for item in self._input:
            if isinstance(item, FlushSentinel):
                continue
            d = frame_duration(item)
            vad.audio_judged += d
            samples += item.samples_per_channel
            loud = rms_dbfs(item) > vad.threshold_dbfs
            if loud:
                speech += d
                silence = 0.0
                frames.append(item)
            else:
                silence += d
                if speaking:
                    frames.append(item)
                else:
                    speech = 0.0
                    frames.clear()
            if not speaking and speech >= vad.min_speech_duration:
                speaking = True
                self._emit(
                    VADEvent(
                        VADEventType.START_OF_SPEECH,
                        samples,
                        now(),
                        speech,
                        0.0,
                        list(frames),
                        1.0,
                        speaking=True,
                    )
                )
            elif speaking and silence >= vad.min_silence_duration:
                speaking = False
                self._emit(
                    VADEvent(
                        VADEventType.END_OF_SPEECH,
                        samples,
                        now(),
                        speech,
                        silence,
                        list(frames),
                        0.0,
                    )
                )
                frames.clear()
                speech = 0.0
            self._emit(
                VADEvent(
                    VADEventType.INFERENCE_DONE,
                    samples,
                    now(),
                    speech,
                    silence,
                    [item],  # (the audio it judged)
                    1.0 if loud else 0.0,
                    speaking=speaking,
                )
            )


class FakeSTT(STT):
    """Streaming: START_OF_SPEECH on the first voice frame, an interim transcript after
    ``interim_delay``, the final ``final_delay`` after the voice ends, then END_OF_SPEECH.
    Transcripts come from ``frame.userdata["transcript"]`` (set by FakeAudioInput).
    ``stream_failures``: the n-th stream opened fails (a lost connection) after hearing
    ``stream_failures[n]`` seconds of audio; streams beyond the list do not fail (asking to
    wait ``retry_after`` seconds before reconnecting, if given)."""

    def __init__(
        self,
        *,
        final_delay: float = 0.1,
        interim_delay: float | None = 0.2,
        stream_failures: Sequence[float] = (),
        retry_after: float | None = None,
    ) -> None:
        super().__init__(
            capabilities=STTCapabilities(streaming=True, interim_results=interim_delay is not None)
        )
        self.final_delay = final_delay
        self.interim_delay = interim_delay
        self.stream_failures = list(stream_failures)
        self.retry_after = retry_after
        """What a failing stream's server asks to wait (``Retry-After``), if anything."""
        self.streams_opened = 0

    async def _recognize_impl(
        self, buffer: list[rtc.AudioFrame], *, language: str | None, conn_options: APIConnectOptions
    ) -> SpeechEvent:
        texts = [f.userdata.get("transcript", "") for f in buffer]
        text = next((t for t in texts if t), "")
        await asyncio.sleep(self.final_delay)
        return SpeechEvent(
            SpeechEventType.FINAL_TRANSCRIPT, [SpeechData(text=text, language="en", confidence=1.0)]
        )

    def stream(
        self,
        *,
        language: str | None = None,
        conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS,
    ) -> SpeechStream:
        fail_after = (
            self.stream_failures[self.streams_opened]
            if self.streams_opened < len(self.stream_failures)
            else None
        )
        self.streams_opened += 1
        stream = _FakeSTTStream(self, language=language, conn_options=conn_options)
        stream.fail_after = fail_after
        return stream


class _FakeSTTStream(SpeechStream):
    fail_after: float | None = None

    async def _run(self) -> None:
        stt = self._stt
        assert isinstance(stt, FakeSTT)
        current: str | None = None
        voice_time = 0.0
        interim_sent = False
        pending: set[asyncio.Task[None]] = set()
        heard = 0.0

        async def send_final(text: str) -> None:
            await asyncio.sleep(stt.final_delay)
            data = [SpeechData(text=text, language="en", confidence=1.0)]
            self._emit(SpeechEvent(SpeechEventType.FINAL_TRANSCRIPT, data))
            self._emit(SpeechEvent(SpeechEventType.END_OF_SPEECH))

        try:
            async for item in self._input:
                if isinstance(item, FlushSentinel):
                    continue
                heard += frame_duration(item)
                if self.fail_after is not None and heard >= self.fail_after:
                    raise STTError(
                        "FakeSTT: connection lost", recoverable=True, retry_after=stt.retry_after
                    )
                text = item.userdata.get("transcript")
                if isinstance(text, str) and text:
                    if current is None:
                        current, voice_time, interim_sent = text, 0.0, False
                        self._emit(SpeechEvent(SpeechEventType.START_OF_SPEECH))
                    voice_time += frame_duration(item)
                    if (
                        stt.interim_delay is not None
                        and not interim_sent
                        and voice_time >= stt.interim_delay
                    ):
                        interim_sent = True
                        words = current.split()
                        partial = " ".join(words[: max(1, len(words) // 2)])
                        self._emit(
                            SpeechEvent(
                                SpeechEventType.INTERIM_TRANSCRIPT,
                                [SpeechData(text=partial, confidence=0.5)],
                            )
                        )
                elif current is not None:
                    task = asyncio.create_task(send_final(current))
                    pending.add(task)
                    task.add_done_callback(pending.discard)
                    current = None
            if pending:
                await asyncio.gather(*pending)
        finally:
            for t in pending:
                t.cancel()
