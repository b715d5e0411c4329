"""``Retry-After`` is honoured by the LLM, STT and TTS retry paths (one helper for all three):
the wait is at least what the server asked (seconds or an HTTP date); a wait longer than
``MAX_RETRY_AFTER`` ends the retries. Virtual time (looptime): nothing waits for real."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from email.utils import format_datetime

import numpy as np
import openai
import pytest
from livekit import rtc

from voicetui.agents import APIConnectOptions
from voicetui.agents._retry import MAX_RETRY_AFTER, Backoff, parse_retry_after, retry_delay
from voicetui.agents.exceptions import LLMError, STTError, TTSError
from voicetui.agents.llm import ChatContext
from voicetui.agents.stt import STT, SpeechData, SpeechEvent, SpeechEventType, STTCapabilities
from voicetui.agents.testing import FakeLLM, FakeLLMResponse, FakeTTS
from voicetui.agents.utils.aio import now
from voicetui.plugins.openai._client import ClientConfig
from voicetui.plugins.openai._errors import map_error

try:  # the HTTP client the openai package is built on (httpx2 in recent releases)
    import httpx2 as httpx
except ImportError:  # pragma: no cover
    import httpx  # type: ignore[no-redef]

OPTS = APIConnectOptions(max_retry=3, retry_interval=2.0, timeout=5.0)
T0 = 1_800_000_000.0


def test_parse_retry_after() -> None:
    assert parse_retry_after("30") == 30.0
    assert parse_retry_after(" 1.5 ") == 1.5
    assert parse_retry_after("-4") == 0.0
    date = format_datetime(datetime.fromtimestamp(T0 + 42, UTC), usegmt=True)
    assert parse_retry_after(date, now=T0) == pytest.approx(42.0)
    for bad in (None, "", "soon", "inf", "nan", "Mon, 99 Foo 2026"):
        assert parse_retry_after(bad) is None


def test_retry_delay_is_at_least_what_the_server_asks() -> None:
    assert retry_delay(OPTS, 0, LLMError("x")) == 0.1  # the backoff, nothing asked
    assert retry_delay(OPTS, 0, LLMError("x", retry_after=30)) == 30.0
    assert retry_delay(OPTS, 3, LLMError("x", retry_after=1)) == 8.0  # the backoff is longer
    assert retry_delay(OPTS, 0, LLMError("x", retry_after=MAX_RETRY_AFTER + 1)) is None


def test_a_restarted_stream_backs_off_until_its_retries_run_out() -> None:
    """The VAD and STT loops' policy: consecutive failures back off, a success starts over."""
    backoff = Backoff(APIConnectOptions(max_retry=2, retry_interval=2.0))
    assert backoff.next_delay(RuntimeError("x")) == 0.1
    assert backoff.next_delay(STTError("x", retry_after=5)) == 5.0  # the server is honoured
    assert backoff.next_delay(RuntimeError("x")) is None and backoff.exhausted
    backoff.reset()
    assert backoff.next_delay(RuntimeError("x")) == 0.1
    assert backoff.next_delay(STTError("x", retry_after=MAX_RETRY_AFTER + 1)) is None
    assert not backoff.exhausted  # (given up because of the server, not the count)


def _status_error(status: int, headers: dict[str, str]) -> openai.APIStatusError:
    request = httpx.Request("POST", "http://127.0.0.1:9/v1/chat/completions")
    response = httpx.Response(status, headers=headers, request=request, json={"error": {}})
    return openai.APIStatusError("rate limited", response=response, body=None)


def test_the_openai_plugin_reads_retry_after() -> None:
    config = ClientConfig(base_url="http://127.0.0.1:9/v1", api_key="k", key_given=True)
    err = map_error(_status_error(429, {"Retry-After": "30"}), LLMError, config)
    assert err is not None and err.recoverable and err.retry_after == 30.0
    err = map_error(_status_error(503, {"retry-after-ms": "1500"}), STTError, config)
    assert err is not None and err.retry_after == 1.5
    err = map_error(_status_error(429, {}), TTSError, config)
    assert err is not None and err.retry_after is None


def _ctx() -> ChatContext:
    ctx = ChatContext()
    ctx.add_message(role="user", content="hi")
    return ctx


@pytest.mark.looptime
async def test_llm_waits_as_asked() -> None:
    llm = FakeLLM(
        [
            FakeLLMResponse(error=LLMError("429", retry_after=30)),
            FakeLLMResponse(content="ok"),
        ]
    )
    start = now()
    text, _ = await llm.chat(chat_ctx=_ctx(), conn_options=OPTS).collect()
    assert text == "ok"
    assert now() - start == pytest.approx(30.0, abs=0.01)  # not +0.1 s


@pytest.mark.looptime
async def test_llm_gives_up_when_asked_to_wait_too_long() -> None:
    llm = FakeLLM(
        [
            FakeLLMResponse(error=LLMError("429", retry_after=MAX_RETRY_AFTER * 2)),
            FakeLLMResponse(content="never"),
        ]
    )
    start = now()
    with pytest.raises(LLMError, match="429"):
        await llm.chat(chat_ctx=_ctx(), conn_options=OPTS).collect()
    assert now() - start < 1.0


@pytest.mark.looptime
async def test_tts_waits_as_asked() -> None:
    tts = FakeTTS(errors=[TTSError("429", retry_after=12)], audio_duration=0.1)
    start = now()
    frames = [ev async for ev in tts.synthesize("hello", conn_options=OPTS)]
    assert frames
    assert now() - start == pytest.approx(12.0, abs=0.01)


class _RateLimitedSTT(STT):
    def __init__(self) -> None:
        super().__init__(capabilities=STTCapabilities(streaming=False, interim_results=False))
        self.attempts: list[float] = []

    async def _recognize_impl(
        self, buffer: list[rtc.AudioFrame], *, language: str | None, conn_options: APIConnectOptions
    ) -> SpeechEvent:
        self.attempts.append(now())
        if len(self.attempts) == 1:
            raise STTError("429", retry_after=7)
        return SpeechEvent(SpeechEventType.FINAL_TRANSCRIPT, [SpeechData(text="hi")])


@pytest.mark.looptime
async def test_stt_waits_as_asked() -> None:
    stt = _RateLimitedSTT()
    frame = rtc.AudioFrame(np.zeros(160, np.int16).tobytes(), 16000, 1, 160)
    ev = await stt.recognize([frame], conn_options=OPTS)
    assert ev.alternatives[0].text == "hi"
    assert np.diff(stt.attempts) == pytest.approx([7.0], abs=0.01)
    await asyncio.sleep(0)
