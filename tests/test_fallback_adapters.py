"""Per-attempt timeouts of the model calls, and the LLM / STT / TTS fallback adapters.

Everything runs on the loop's virtual clock (looptime): hangs of an hour cost nothing, and the
times asserted are exact up to the clock's resolution."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest
from livekit import rtc

from voicetui.agents import APIConnectOptions
from voicetui.agents._stream import FlushSentinel
from voicetui.agents.audio import frame_duration, frames_duration
from voicetui.agents.exceptions import LLMError, STTError, TTSError
from voicetui.agents.llm import ChatContext, ChatMessage
from voicetui.agents.llm import FallbackAdapter as LLMFallbackAdapter
from voicetui.agents.metrics import LLMMetrics, STTMetrics, TTSMetrics
from voicetui.agents.stt import FallbackAdapter as STTFallbackAdapter
from voicetui.agents.stt import (
    SpeechEvent,
    SpeechEventType,
    SpeechStream,
    STTCapabilities,
)
from voicetui.agents.testing import (
    FakeAudioInput,
    FakeLLM,
    FakeLLMResponse,
    FakeSTT,
    FakeTTS,
    FakeVAD,
    Utterance,
)
from voicetui.agents.testing.fake_tts import _FakeChunkedStream
from voicetui.agents.tts import TEXT_KEY, ChunkedStream, SynthesizedAudio
from voicetui.agents.tts import FallbackAdapter as TTSFallbackAdapter
from voicetui.agents.types import DEFAULT_API_CONNECT_OPTIONS
from voicetui.agents.utils.aio import cancel_and_wait, now

pytestmark = [pytest.mark.looptime, pytest.mark.usefixtures("no_leaks")]

HOUR = 3600.0


def _user_ctx(text: str = "hello there") -> ChatContext:
    ctx = ChatContext()
    ctx.add_message(role="system", content="be nice")
    ctx.add_message(role="user", content=text)
    return ctx


def _events(log: list[Any]) -> list[tuple[str, bool]]:
    """(label, available) of recorded availability events."""
    out: list[tuple[str, bool]] = []
    for e in log:
        model = getattr(e, "llm", None) or getattr(e, "stt", None) or getattr(e, "tts", None)
        assert model is not None
        out.append((model.label, e.available))
    return out


# ------------------------------------------------------------------------------------------------
# Fakes with a label, that fail or hang on demand
# ------------------------------------------------------------------------------------------------


class _LLM(FakeLLM):
    """A FakeLLM with its own label; every request fails with ``broken`` while it is set, and
    waits ``hang`` seconds before its first chunk while that is set. Records attempt times."""

    def __init__(
        self,
        label: str,
        responses: Sequence[FakeLLMResponse] = (),
        *,
        default: str | None = None,
        broken: LLMError | None = None,
        hang: float | None = None,
    ) -> None:
        super().__init__(responses, default=default)
        self._label = label
        self.broken = broken
        self.hang = hang
        self.attempts: list[float] = []

    def _next_response(self, chat_ctx: ChatContext) -> FakeLLMResponse:
        self.attempts.append(now())
        if self.hang is not None:
            return FakeLLMResponse(content="too late", ttft=self.hang)
        if self.broken is not None:
            return FakeLLMResponse(error=self.broken)
        return super()._next_response(chat_ctx)

    def requests(self) -> list[str]:
        """Last user message of each chat() call, recovery probes included."""
        texts: list[str] = []
        for call in self.calls:
            users = [m for m in call.chat_ctx.items if isinstance(m, ChatMessage)]
            texts.append(users[-1].text_content or "")
        return texts


class _STT(FakeSTT):
    """A FakeSTT with its own label. ``recognize`` raises ``broken`` while it is set, and waits
    an hour first while ``hang`` is. Streams created while ``die_after`` is set work as
    FakeSTT's until that many seconds of audio were pushed, then fail (with ``broken``, or
    "connection lost"). Records recognition attempts and created streams."""

    def __init__(
        self,
        label: str,
        *,
        broken: STTError | None = None,
        die_after: float | None = None,
        hang: bool = False,
        streaming: bool = True,
    ) -> None:
        super().__init__(interim_delay=None)
        self._label = label
        self.broken = broken
        self.die_after = die_after
        self.hang = hang
        self.attempts: list[float] = []
        self.streams = 0
        if not streaming:
            self._capabilities = STTCapabilities(streaming=False, interim_results=False)

    async def _recognize_impl(
        self, buffer: list[rtc.AudioFrame], *, language: str | None, conn_options: APIConnectOptions
    ) -> SpeechEvent:
        self.attempts.append(now())
        if self.hang:
            await asyncio.sleep(HOUR)
        if self.broken is not None:
            raise self.broken
        return await super()._recognize_impl(buffer, language=language, conn_options=conn_options)

    def stream(
        self,
        *,
        language: str | None = None,
        conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS,
    ) -> SpeechStream:
        self.streams += 1
        if self.die_after is None:
            return super().stream(language=language, conn_options=conn_options)
        return _DyingSTTStream(self, language=language, conn_options=conn_options)


class _DyingSTTStream(SpeechStream):
    """A FakeSTT stream that fails once ``die_after`` seconds of audio were pushed."""

    async def _run(self) -> None:
        stt = self._stt
        assert isinstance(stt, _STT) and stt.die_after is not None
        die_after = stt.die_after
        inner = FakeSTT(final_delay=stt.final_delay, interim_delay=None).stream()

        async def forward_events() -> None:
            async for ev in inner:
                self._emit(ev)

        events = asyncio.create_task(forward_events())
        try:
            heard = 0.0
            async for item in self._input:
                if isinstance(item, FlushSentinel):
                    inner.flush()
                    continue
                inner.push_frame(item)
                heard += frame_duration(item)
                if heard >= die_after - 1e-9:
                    await asyncio.sleep(0)  # let the inner stream see the frame
                    raise stt.broken or STTError("connection lost")
            inner.end_input()
            await events
        finally:
            await cancel_and_wait(events)
            await inner.aclose()


class _TTS(FakeTTS):
    """A FakeTTS with its own label; requests fail with ``broken`` while it is set, and those
    for a text in ``fail_on`` always fail. Records attempt times."""

    def __init__(
        self,
        label: str,
        *,
        broken: TTSError | None = None,
        fail_on: Sequence[str] = (),
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self._label = label
        self.broken = broken
        self.fail_on = set(fail_on)
        self.attempts: list[float] = []

    def synthesize(
        self, text: str, *, conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS
    ) -> ChunkedStream:
        self.requests.append(text)
        return _TTSStream(self, text, conn_options=conn_options)


class _TTSStream(_FakeChunkedStream):
    async def _synthesize(self) -> None:
        tts = self._tts
        assert isinstance(tts, _TTS)
        tts.attempts.append(now())
        if tts.broken is not None:
            raise tts.broken
        if self._text in tts.fail_on:
            raise TTSError(f"cannot say {self._text!r}", recoverable=False)
        await super()._synthesize()


async def _feed_and_collect(
    stream: SpeechStream, utterances: Sequence[Utterance], *, seconds: float
) -> list[SpeechEvent]:
    """Pushes ``seconds`` of scripted audio in real time, then ends the input; returns every
    event of the stream."""
    audio = FakeAudioInput(utterances)

    async def feed() -> None:
        pushed = 0.0
        async for frame in audio:
            stream.push_frame(frame)
            pushed += frame_duration(frame)
            if pushed >= seconds - 1e-9:
                break
        stream.end_input()

    feeder = asyncio.create_task(feed())
    try:
        return [ev async for ev in stream]
    finally:
        await cancel_and_wait(feeder)


def _texts(audio: Sequence[SynthesizedAudio]) -> list[str]:
    return [a.frame.userdata[TEXT_KEY] for a in audio if TEXT_KEY in a.frame.userdata]


# ------------------------------------------------------------------------------------------------
# Timeouts of a single provider (APIConnectOptions.timeout)
# ------------------------------------------------------------------------------------------------

_TIMEOUT = APIConnectOptions(max_retry=2, retry_interval=0.5, timeout=2.0)
# attempts at 0, then +2 (timeout) +0.1 (first backoff), then +2 +0.5: gives up at 6.6
_ATTEMPTS = [0.0, 2.1, 4.6]
_GIVES_UP_AT = 6.6


def _backoffs(opts: APIConnectOptions) -> list[float]:
    return [opts.interval_for_retry(i) for i in range(opts.max_retry)]


def test_timeout_schedule_follows_interval_for_retry() -> None:
    assert _backoffs(_TIMEOUT) == [0.1, 0.5]
    starts = [0.0]
    for backoff in _backoffs(_TIMEOUT):
        starts.append(starts[-1] + _TIMEOUT.timeout + backoff)
    assert starts == pytest.approx(_ATTEMPTS)
    assert starts[-1] + _TIMEOUT.timeout == pytest.approx(_GIVES_UP_AT)


async def test_llm_hanging_attempts_time_out_and_are_retried() -> None:
    llm = _LLM("hanging", hang=HOUR)
    metrics: list[LLMMetrics] = []
    llm.on("metrics_collected", metrics.append)
    t0 = now()
    with pytest.raises(LLMError, match=r"hanging timed out after 2s before the first chunk") as ei:
        await llm.chat(chat_ctx=_user_ctx(), conn_options=_TIMEOUT).collect()
    assert ei.value.recoverable  # the last attempt's error, as for any recoverable error
    assert np.array(llm.attempts) - t0 == pytest.approx(_ATTEMPTS, abs=1e-3)
    assert now() - t0 == pytest.approx(_GIVES_UP_AT, abs=1e-3)
    assert len(metrics) == 1 and not metrics[0].cancelled and metrics[0].ttft == -1.0


async def test_llm_timeout_then_success_on_retry() -> None:
    llm = _LLM("slow", [FakeLLMResponse(content="late", ttft=HOUR)])
    llm.add(FakeLLMResponse(content="on time", ttft=0.5))
    t0 = now()
    text, _ = await llm.chat(chat_ctx=_user_ctx(), conn_options=_TIMEOUT).collect()
    assert text == "on time"
    assert now() - t0 == pytest.approx(2.0 + 0.1 + 0.5, abs=1e-3)


async def test_llm_gap_between_chunks_times_out_without_retry() -> None:
    # one word every 5 s: the first comes at once, the second never within the 2 s timeout
    llm = _LLM("stalling", [FakeLLMResponse(content="one two three", tokens_per_second=0.2)])
    received: list[str] = []
    t0 = now()
    with pytest.raises(LLMError, match=r"stalling timed out after 2s between two chunks"):
        async with llm.chat(chat_ctx=_user_ctx(), conn_options=_TIMEOUT) as stream:
            async for chunk in stream:
                if chunk.delta is not None and chunk.delta.content:
                    received.append(chunk.delta.content)
    assert received == ["one"]
    assert len(llm.attempts) == 1  # output was emitted: not retried
    assert now() - t0 == pytest.approx(2.0, abs=1e-3)

    # chunks closer together than the timeout are fine, however long the whole answer takes
    steady = _LLM("steady", [FakeLLMResponse(content="a b c d e f g h", tokens_per_second=0.6)])
    text, _ = await steady.chat(chat_ctx=_user_ctx(), conn_options=_TIMEOUT).collect()
    assert text == "a b c d e f g h"


async def test_stt_recognize_hanging_attempts_time_out_and_are_retried() -> None:
    stt = _STT("hanging", hang=True)
    metrics: list[STTMetrics] = []
    stt.on("metrics_collected", metrics.append)
    t0 = now()
    with pytest.raises(STTError, match=r"hanging timed out after 2s") as ei:
        await stt.recognize(rtc.AudioFrame(bytes(320), 16000, 1, 160), conn_options=_TIMEOUT)
    assert ei.value.recoverable
    assert np.array(stt.attempts) - t0 == pytest.approx(_ATTEMPTS, abs=1e-3)
    assert now() - t0 == pytest.approx(_GIVES_UP_AT, abs=1e-3)
    assert metrics == []


async def test_tts_hanging_attempts_time_out_and_are_retried() -> None:
    tts = _TTS("hanging", ttfb=HOUR)
    metrics: list[TTSMetrics] = []
    tts.on("metrics_collected", metrics.append)
    t0 = now()
    with pytest.raises(TTSError, match=r"hanging timed out after 2s before the first frame") as ei:
        await tts.synthesize("Hello there.", conn_options=_TIMEOUT).collect()
    assert ei.value.recoverable
    assert np.array(tts.attempts) - t0 == pytest.approx(_ATTEMPTS, abs=1e-3)
    assert now() - t0 == pytest.approx(_GIVES_UP_AT, abs=1e-3)
    assert len(metrics) == 1 and metrics[0].ttfb == -1.0 and not metrics[0].cancelled


async def test_tts_gap_between_frames_times_out_without_retry() -> None:
    # 50 ms frames generated 60 times slower than real time: 3 s between two frames
    tts = _TTS("stalling", frame_duration=0.05, rtf=60.0)
    frames: list[rtc.AudioFrame] = []
    t0 = now()
    with pytest.raises(TTSError, match=r"stalling timed out after 2s between two frames"):
        async with tts.synthesize("Hello there.", conn_options=_TIMEOUT) as stream:
            async for audio in stream:
                frames.append(audio.frame)
    assert len(frames) == 1 and len(tts.attempts) == 1
    assert now() - t0 == pytest.approx(2.0, abs=1e-3)


# ------------------------------------------------------------------------------------------------
# LLM FallbackAdapter
# ------------------------------------------------------------------------------------------------


async def test_llm_fallback_switches_on_unrecoverable_error() -> None:
    primary = _LLM("primary", broken=LLMError("bad api key", recoverable=False))
    secondary = _LLM("secondary", default="from secondary")
    adapter = LLMFallbackAdapter([primary, secondary])
    events: list[Any] = []
    adapter.on("llm_availability_changed", events.append)
    try:
        assert adapter.model == "fake-llm"
        text, _ = await adapter.chat(chat_ctx=_user_ctx()).collect()
        assert text == "from secondary"
        assert len(primary.attempts) == 1  # unrecoverable: not retried
        assert _events(events) == [("primary", False)]
        assert not adapter.available(primary) and adapter.available(secondary)

        # the next request goes straight to the provider that works
        text, _ = await adapter.chat(chat_ctx=_user_ctx("again")).collect()
        assert text == "from secondary"
        assert primary.requests() == ["hello there"]
        assert secondary.requests() == ["hello there", "again"]
    finally:
        await adapter.aclose()


async def test_llm_fallback_retries_recoverable_errors_per_provider_first() -> None:
    overloaded = LLMError("overloaded", recoverable=True)
    primary = _LLM(
        "primary",
        [FakeLLMResponse(error=overloaded), FakeLLMResponse(content="primary ok")],
    )
    secondary = _LLM("secondary", default="from secondary")
    adapter = LLMFallbackAdapter([primary, secondary], max_retry_per_llm=1, retry_interval=0.5)
    events: list[Any] = []
    adapter.on("llm_availability_changed", events.append)
    try:
        t0 = now()
        text, _ = await adapter.chat(chat_ctx=_user_ctx()).collect()
        assert text == "primary ok"  # the retry worked: no switch
        assert now() - t0 == pytest.approx(0.1, abs=1e-3)
        assert events == [] and secondary.calls == []

        primary.add(
            FakeLLMResponse(error=overloaded),
            FakeLLMResponse(error=overloaded),
            FakeLLMResponse(content="never reached"),
        )
        t0 = now()
        text, _ = await adapter.chat(chat_ctx=_user_ctx()).collect()
        assert text == "from secondary"
        assert np.array(primary.attempts[-2:]) - t0 == pytest.approx([0.0, 0.1], abs=1e-3)
        assert [r.content for r in primary.pending] == ["never reached"]  # 1 + max_retry tries
        assert _events(events) == [("primary", False)]
    finally:
        await adapter.aclose()


async def test_llm_fallback_all_failing_gives_one_error_naming_each() -> None:
    a = _LLM("alpha", broken=LLMError("bad api key", recoverable=False))
    b = _LLM("beta", hang=HOUR)
    c = _LLM("gamma", broken=LLMError("quota exceeded", recoverable=False))
    adapter = LLMFallbackAdapter([a, b, c], attempt_timeout=1.5)
    events: list[Any] = []
    adapter.on("llm_availability_changed", events.append)
    try:
        t0 = now()
        with pytest.raises(LLMError) as ei:
            await adapter.chat(chat_ctx=_user_ctx()).collect()
        assert not ei.value.recoverable
        assert ei.value.message == (
            "all LLMs failed: alpha: bad api key; "
            "beta timed out after 1.5s before the first chunk; gamma: quota exceeded"
        )
        assert now() - t0 == pytest.approx(1.5, abs=1e-3)
        assert _events(events) == [("alpha", False), ("beta", False), ("gamma", False)]

        # none is available: all are tried again, and the one that works is available again
        b.hang = None
        b.add(FakeLLMResponse(content="beta is back"))
        text, _ = await adapter.chat(chat_ctx=_user_ctx()).collect()
        assert text == "beta is back"
        assert _events(events)[3:] == [("beta", True)]
        assert adapter.available(b) and not adapter.available(a)
    finally:
        await adapter.aclose()


async def test_llm_fallback_recovers_a_provider_in_the_background() -> None:
    primary = _LLM("primary", broken=LLMError("down", recoverable=False), default="pong")
    secondary = _LLM("secondary", default="from secondary")
    adapter = LLMFallbackAdapter([primary, secondary], recovery_interval=5.0)
    log: list[tuple[str, bool, float]] = []
    adapter.on("llm_availability_changed", lambda e: log.append((e.llm.label, e.available, now())))
    try:
        t0 = now()
        assert (await adapter.chat(chat_ctx=_user_ctx()).collect())[0] == "from secondary"
        await asyncio.sleep(7.0)  # the probe at t=5 failed: the next one is 10 s later
        assert [r for r in primary.requests() if r == "ping"] == ["ping"]
        assert (await adapter.chat(chat_ctx=_user_ctx("still?")).collect())[0] == "from secondary"
        assert "still?" not in primary.requests()

        primary.broken = None
        await asyncio.sleep(10.0)
        assert [(label, up) for label, up, _ in log] == [("primary", False), ("primary", True)]
        assert log[1][2] - t0 == pytest.approx(15.0, abs=1e-3)
        assert primary.requests() == ["hello there", "ping", "ping"]

        text, _ = await adapter.chat(chat_ctx=_user_ctx("back?")).collect()
        assert text == "pong"  # served by the primary again
        assert primary.requests()[-1] == "back?"
    finally:
        await adapter.aclose()


async def test_llm_fallback_metrics_carry_the_real_provider_label() -> None:
    primary = _LLM("primary", [FakeLLMResponse(error=LLMError("boom", recoverable=False))])
    secondary = _LLM("secondary", [FakeLLMResponse(content="two words", ttft=0.25)])
    adapter = LLMFallbackAdapter([primary, secondary])
    metrics: list[LLMMetrics] = []
    adapter.on("metrics_collected", metrics.append)
    try:
        await adapter.chat(chat_ctx=_user_ctx()).collect()
        assert [m.label for m in metrics] == ["primary", "secondary"]
        assert metrics[0].ttft == -1.0
        assert metrics[1].ttft == pytest.approx(0.25, abs=1e-3)
        assert metrics[1].completion_tokens == 2 and not metrics[1].cancelled
    finally:
        await adapter.aclose()
    # detached on close
    secondary.add(FakeLLMResponse(content="after close"))
    await secondary.chat(chat_ctx=_user_ctx(), conn_options=_TIMEOUT).collect()
    assert len(metrics) == 2


@pytest.mark.parametrize("retry_on_chunk_sent", [False, True])
async def test_llm_fallback_failure_after_a_chunk(retry_on_chunk_sent: bool) -> None:
    primary = _LLM("primary", [FakeLLMResponse(content="one two", tokens_per_second=0.1)])
    secondary = _LLM("secondary", default="fine")
    adapter = LLMFallbackAdapter(
        [primary, secondary], attempt_timeout=2.0, retry_on_chunk_sent=retry_on_chunk_sent
    )
    received: list[str] = []
    try:

        async def read() -> None:
            async with adapter.chat(chat_ctx=_user_ctx()) as stream:
                async for chunk in stream:
                    if chunk.delta is not None and chunk.delta.content:
                        received.append(chunk.delta.content)

        if retry_on_chunk_sent:
            await read()
            assert received == ["one", "fine"]
        else:
            with pytest.raises(LLMError, match="after the response started") as ei:
                await read()
            assert not ei.value.recoverable
            assert received == ["one"] and secondary.calls == []
        assert not adapter.available(primary)
    finally:
        await adapter.aclose()


async def test_llm_fallback_close_mid_request_and_during_recovery() -> None:
    primary = _LLM("primary", broken=LLMError("down", recoverable=False))
    secondary = _LLM("secondary", [FakeLLMResponse(content="slow", ttft=3.0)])
    adapter = LLMFallbackAdapter([primary, secondary], recovery_interval=1.0)
    metrics: list[LLMMetrics] = []
    adapter.on("metrics_collected", metrics.append)
    stream = adapter.chat(chat_ctx=_user_ctx())
    await asyncio.sleep(1.5)  # the secondary is answering, a recovery probe of primary ran
    await stream.aclose()
    assert metrics[-1].label == "secondary" and metrics[-1].cancelled
    await adapter.aclose()  # cancels the recovery loop; no_leaks checks nothing is left
    with pytest.raises(ValueError):
        LLMFallbackAdapter([])


# ------------------------------------------------------------------------------------------------
# STT FallbackAdapter
# ------------------------------------------------------------------------------------------------

_HELLO = [Utterance(speech=0.5, silence_before=0.2, transcript="hello there")]


async def test_stt_fallback_recognize_switches_and_reports_real_metrics() -> None:
    primary = _STT("primary", broken=STTError("bad key", recoverable=False))
    secondary = _STT("secondary")
    adapter = STTFallbackAdapter([primary, secondary])
    events: list[Any] = []
    metrics: list[STTMetrics] = []
    adapter.on("stt_availability_changed", events.append)
    adapter.on("metrics_collected", metrics.append)
    frame = rtc.AudioFrame(bytes(320), 16000, 1, 160)
    frame.userdata["transcript"] = "hello there"
    try:
        ev = await adapter.recognize(frame)
        assert ev.text == "hello there"
        assert _events(events) == [("primary", False)]
        assert [m.label for m in metrics] == ["secondary"]
    finally:
        await adapter.aclose()


async def test_stt_fallback_recognize_retries_then_names_each_failure() -> None:
    primary = _STT("primary", broken=STTError("overloaded", recoverable=True))
    secondary = _STT("secondary", hang=True)
    adapter = STTFallbackAdapter(
        [primary, secondary], attempt_timeout=1.0, max_retry_per_stt=1, retry_interval=2.0
    )
    try:
        t0 = now()
        with pytest.raises(STTError) as ei:
            await adapter.recognize(rtc.AudioFrame(bytes(320), 16000, 1, 160))
        assert not ei.value.recoverable
        assert ei.value.message == (
            "all STTs failed: primary: overloaded; secondary timed out after 1s"
        )
        # primary: 2 attempts 0.1 s apart; secondary: 2 attempts of 1 s, 0.1 s apart
        assert np.array(primary.attempts) - t0 == pytest.approx([0.0, 0.1], abs=1e-3)
        assert np.array(secondary.attempts) - t0 == pytest.approx([0.1, 1.2], abs=1e-3)
        assert now() - t0 == pytest.approx(2.2, abs=1e-3)
    finally:
        await adapter.aclose()


async def test_stt_fallback_stream_switch_keeps_the_utterance_in_progress() -> None:
    # the primary dies at 0.75 s: after the voice (0.2-0.7 s) but before its final transcript;
    # the live audio after the switch is only silence, so the words come from the replay
    primary = _STT("primary", die_after=0.75)
    secondary = _STT("secondary")
    adapter = STTFallbackAdapter([primary, secondary])
    events: list[Any] = []
    adapter.on("stt_availability_changed", events.append)
    try:
        async with adapter.stream() as stream:
            got = await _feed_and_collect(stream, _HELLO, seconds=1.5)
        assert [e.type for e in got] == [
            SpeechEventType.START_OF_SPEECH,  # from the primary, not repeated by the secondary
            SpeechEventType.FINAL_TRANSCRIPT,
            SpeechEventType.END_OF_SPEECH,
        ]
        assert got[1].text == "hello there"
        assert _events(events) == [("primary", False)]
        assert (primary.streams, secondary.streams) == (1, 1)
    finally:
        await adapter.aclose()


async def test_stt_fallback_stream_replays_only_since_the_last_final() -> None:
    # first utterance: voice 0.1-0.5 s, final at ~0.6 s; second: voice 1.1-1.5 s, whose final
    # would come at ~1.61 s, but the primary dies at 1.55 s
    primary = _STT("primary", die_after=1.55)
    secondary = _STT("secondary")
    adapter = STTFallbackAdapter([primary, secondary])
    utterances = [
        Utterance(speech=0.4, silence_before=0.1, transcript="first one"),
        Utterance(speech=0.4, silence_before=0.6, transcript="second one"),
    ]
    try:
        async with adapter.stream() as stream:
            got = await _feed_and_collect(stream, utterances, seconds=2.0)
        # "first one" is not transcribed twice: the replay starts after its final transcript
        assert [(e.type, e.text) for e in got] == [
            (SpeechEventType.START_OF_SPEECH, ""),
            (SpeechEventType.FINAL_TRANSCRIPT, "first one"),
            (SpeechEventType.END_OF_SPEECH, ""),
            (SpeechEventType.START_OF_SPEECH, ""),
            (SpeechEventType.FINAL_TRANSCRIPT, "second one"),
            (SpeechEventType.END_OF_SPEECH, ""),
        ]
    finally:
        await adapter.aclose()


async def test_stt_fallback_wraps_batch_providers_with_the_vad() -> None:
    with pytest.raises(ValueError, match="vad"):
        STTFallbackAdapter([_STT("batch", streaming=False)])
    primary = _STT("primary", broken=STTError("down", recoverable=False), streaming=False)
    secondary = _STT("secondary", streaming=False)
    adapter = STTFallbackAdapter([primary, secondary], vad=FakeVAD())
    assert adapter.capabilities.streaming
    metrics: list[STTMetrics] = []
    adapter.on("metrics_collected", metrics.append)
    try:
        async with adapter.stream() as stream:
            got = await _feed_and_collect(stream, _HELLO, seconds=1.5)
        # the primary's recognition failed at the end of speech; the secondary got the audio
        assert [e.type for e in got] == [
            SpeechEventType.START_OF_SPEECH,
            SpeechEventType.FINAL_TRANSCRIPT,
            SpeechEventType.END_OF_SPEECH,
        ]
        assert got[1].text == "hello there"
        assert [m.label for m in metrics] == ["secondary"]
        assert metrics[0].audio_duration >= 0.5
    finally:
        await adapter.aclose()


async def test_stt_fallback_all_streams_failing_and_recovery() -> None:
    primary = _STT("primary", broken=STTError("down"), die_after=0.3)
    secondary = _STT("secondary", broken=STTError("also down"), die_after=0.3)
    adapter = STTFallbackAdapter([primary, secondary], recovery_interval=2.0)
    log: list[tuple[str, bool, float]] = []
    adapter.on("stt_availability_changed", lambda e: log.append((e.stt.label, e.available, now())))
    try:
        t0 = now()
        with pytest.raises(STTError, match=r"^all STTs failed: primary: down; secondary: also"):
            async with adapter.stream() as stream:
                await _feed_and_collect(stream, _HELLO, seconds=1.5)
        assert [(label, up) for label, up, _ in log] == [
            ("primary", False),
            ("secondary", False),
        ]
        # the probes (0.5 s of silence, streamed) fail until the secondary is repaired
        await asyncio.sleep(2.5)
        secondary.die_after = None
        await asyncio.sleep(4.0)
        assert log[-1][:2] == ("secondary", True)
        assert log[-1][2] - t0 == pytest.approx(0.3 + 2.0 + 4.0, abs=1e-3)
        assert adapter.available(secondary) and not adapter.available(primary)
    finally:
        await adapter.aclose()


# ------------------------------------------------------------------------------------------------
# TTS FallbackAdapter
# ------------------------------------------------------------------------------------------------

_SENTENCES = ["Hello there, my friend.", "The weather is fine today.", "See you again soon."]


async def test_tts_fallback_synthesize_switches_and_reports_real_metrics() -> None:
    primary = _TTS("primary", broken=TTSError("bad key", recoverable=False))
    secondary = _TTS("secondary")
    adapter = TTSFallbackAdapter([primary, secondary])
    events: list[Any] = []
    metrics: list[TTSMetrics] = []
    adapter.on("tts_availability_changed", events.append)
    adapter.on("metrics_collected", metrics.append)
    try:
        audio = [a async for a in adapter.synthesize(_SENTENCES[0])]
        assert _texts(audio) == [_SENTENCES[0]]
        assert TEXT_KEY in audio[0].frame.userdata
        assert frames_duration([a.frame for a in audio]) == pytest.approx(
            secondary.duration_for(_SENTENCES[0]), abs=1e-3
        )
        assert len({a.request_id for a in audio}) == 1
        assert _events(events) == [("primary", False)]
        assert [m.label for m in metrics] == ["primary", "secondary"]
        assert len(primary.attempts) == 1
    finally:
        await adapter.aclose()


async def test_tts_fallback_retries_per_provider_then_names_each_failure() -> None:
    busy = TTSError("busy", recoverable=True)
    primary = _TTS("primary", errors=[busy, busy])
    secondary = _TTS("secondary", broken=TTSError("quota exceeded", recoverable=False))
    adapter = TTSFallbackAdapter([primary, secondary], max_retry_per_tts=2, retry_interval=0.5)
    try:
        t0 = now()
        frame = await adapter.synthesize("Hi there.").collect()
        assert frame_duration(frame) == pytest.approx(primary.duration_for("Hi there."))
        assert np.array(primary.attempts) - t0 == pytest.approx([0.0, 0.1, 0.6], abs=1e-3)
        assert adapter.available(primary) and secondary.attempts == []

        primary.errors = [busy, busy, busy]
        with pytest.raises(TTSError) as ei:
            await adapter.synthesize("Hi there.").collect()
        assert not ei.value.recoverable
        assert ei.value.message == "all TTSs failed: primary: busy; secondary: quota exceeded"
        assert len(primary.attempts) == 6 and len(secondary.attempts) == 1
    finally:
        await adapter.aclose()


async def test_tts_fallback_resamples_to_one_rate() -> None:
    low = _TTS("low", sample_rate=16000)
    high = _TTS("high", sample_rate=24000)
    adapter = TTSFallbackAdapter([low, high])
    assert adapter.sample_rate == 24000
    try:
        text = _SENTENCES[1]
        audio = [a async for a in adapter.synthesize(text)]
        assert {a.frame.sample_rate for a in audio} == {24000}
        assert _texts(audio) == [text]
        assert frames_duration([a.frame for a in audio]) == pytest.approx(
            low.duration_for(text), abs=0.002
        )
        assert high.requests == []

        low.broken = TTSError("down", recoverable=False)
        audio = [a async for a in adapter.synthesize(text)]
        assert {a.frame.sample_rate for a in audio} == {24000}
        assert high.requests == [text]
    finally:
        await adapter.aclose()

    forced = TTSFallbackAdapter([low, high], sample_rate=48000)
    try:
        frame = await forced.synthesize("Hi there.").collect()
        assert frame.sample_rate == 48000
        assert frame_duration(frame) == pytest.approx(high.duration_for("Hi there."), abs=0.002)
    finally:
        await forced.aclose()
    with pytest.raises(ValueError):
        TTSFallbackAdapter([_TTS("mono"), _StereoTTS()])


class _StereoTTS(FakeTTS):
    def __init__(self) -> None:
        super().__init__()
        self._num_channels = 2


async def test_tts_fallback_stream_retries_the_failed_sentence_on_the_next_provider() -> None:
    primary = _TTS("primary", sample_rate=16000, fail_on=[_SENTENCES[1]], ttfb=0.05)
    secondary = _TTS("secondary", sample_rate=24000, ttfb=0.05)
    adapter = TTSFallbackAdapter([primary, secondary])
    assert adapter.capabilities.streaming
    events: list[Any] = []
    adapter.on("tts_availability_changed", events.append)
    try:
        async with adapter.stream() as stream:
            for word in " ".join(_SENTENCES).split(" "):
                stream.push_text(word + " ")
                await asyncio.sleep(0.01)
            stream.end_input()
            audio = [a async for a in stream]
        assert _texts(audio) == _SENTENCES  # each sentence announced once, in order
        assert {a.frame.sample_rate for a in audio} == {24000}
        assert frames_duration([a.frame for a in audio]) == pytest.approx(
            sum(primary.duration_for(s) for s in _SENTENCES), abs=0.005
        )
        assert primary.requests[:2] == _SENTENCES[:2]
        assert _SENTENCES[1] in secondary.requests
        assert _events(events) == [("primary", False)]
    finally:
        await adapter.aclose()


async def test_tts_fallback_recovers_a_provider_in_the_background() -> None:
    primary = _TTS("primary", broken=TTSError("down", recoverable=False))
    secondary = _TTS("secondary")
    adapter = TTSFallbackAdapter([primary, secondary], recovery_interval=3.0)
    log: list[tuple[str, bool, float]] = []
    adapter.on("tts_availability_changed", lambda e: log.append((e.tts.label, e.available, now())))
    try:
        t0 = now()
        await adapter.synthesize("Hi there.").collect()
        await asyncio.sleep(4.0)  # probe at t=3 fails, the next one is at t=9
        primary.broken = None
        await asyncio.sleep(6.0)
        assert [(label, up) for label, up, _ in log] == [("primary", False), ("primary", True)]
        assert log[1][2] - t0 == pytest.approx(9.0, abs=1e-3)
        assert primary.requests == ["Hi there.", "Hello.", "Hello."]
        await adapter.synthesize("Back again.").collect()
        assert primary.requests[-1] == "Back again."
    finally:
        await adapter.aclose()
