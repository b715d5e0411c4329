"""LlamaLLM: prompt building (no model), errors, and the real Qwen2.5-Coder-0.5B model through
the full AgentSession in text mode. The model is loaded once for the module."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import logging
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from voicetui.agents import Agent, AgentSession, LLMError, function_tool
from voicetui.agents.llm import ChatContext, FunctionCall, FunctionCallOutput
from voicetui.agents.metrics import LLMMetrics
from voicetui.agents.testing import FakeTextOutput
from voicetui.plugins.local import model_store
from voicetui.plugins.local._llama_worker import Steering
from voicetui.plugins.local.llama_llm import (
    ANSWER_REQUEST,
    TOOL_GUIDANCE,
    LlamaLLM,
    build_messages,
    clean_arguments,
    tool_schemas,
)

HAVE_LLAMA = importlib.util.find_spec("llama_cpp") is not None
HAVE_QWEN = all(
    importlib.util.find_spec(p.module) for p in model_store.CATALOG["qwen2.5-coder-0.5b"].parts
)
needs_llama = pytest.mark.skipif(not HAVE_LLAMA, reason="llama-cpp-python is not installed")
needs_model = pytest.mark.skipif(
    not (HAVE_LLAMA and HAVE_QWEN), reason="llama-cpp-python or the Qwen model packages missing"
)

INSTRUCTIONS = "You are a friendly voice assistant. Keep answers short."


@function_tool
async def get_time() -> dict[str, str]:
    """Get the current local time."""
    return {"time": "14:35"}


@function_tool
async def get_weather(city: str) -> dict[str, Any]:
    """Get the current weather in a city.

    Args:
        city: the city name
    """
    return {"city": city, "temp_c": 21}


# --- prompt building, without a model ----------------------------------------------------------
def test_import_is_cheap() -> None:
    code = (
        "import sys, voicetui.plugins.local.llama_llm, voicetui.plugins.local.model_store;"
        "assert 'llama_cpp' not in sys.modules, 'llama_cpp imported eagerly'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_messages_keep_calls_and_results_in_the_native_format() -> None:
    ctx = ChatContext()
    ctx.add_message(role="system", content=INSTRUCTIONS)
    ctx.add_message(role="user", content="What time is it?")
    ctx.append(FunctionCall(call_id="c1", name="get_time", arguments="{}"))
    ctx.append(
        FunctionCallOutput(
            call_id="c1", name="get_time", output='{"time": "14:35"}', is_error=False
        )
    )
    ctx.add_message(role="assistant", content="It is 14:35.")
    ctx.add_message(role="user", content="And the weather in Oslo?")
    ctx.add_message(role="assistant", content="Let me check.")
    ctx.append(FunctionCall(call_id="c2", name="get_weather", arguments='{"city": "Oslo"}'))
    ctx.append(FunctionCall(call_id="c3", name="nope", arguments="{}"))
    ctx.append(
        FunctionCallOutput(call_id="c2", name="get_weather", output='{"temp_c": 3}', is_error=False)
    )
    ctx.append(
        FunctionCallOutput(call_id="c3", name="nope", output="Unknown function", is_error=True)
    )
    msgs = build_messages(ctx, tools=[get_time, get_weather])
    call = {"type": "function", "function": {"name": "get_time", "arguments": {}}}
    assert msgs == [
        {"role": "system", "content": f"{INSTRUCTIONS}\n\n{TOOL_GUIDANCE}"},
        {"role": "user", "content": "What time is it?"},
        {"role": "assistant", "content": "", "tool_calls": [call]},  # content never null
        {"role": "tool", "name": "get_time", "content": '{"time": "14:35"}'},
        {"role": "assistant", "content": "It is 14:35."},
        {"role": "user", "content": "And the weather in Oslo?"},
        {
            "role": "assistant",
            "content": "Let me check.",
            "tool_calls": [
                {
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": {"city": "Oslo"}},
                },
                {"type": "function", "function": {"name": "nope", "arguments": {}}},
            ],
        },
        {"role": "tool", "name": "get_weather", "content": '{"temp_c": 3}'},
        {"role": "tool", "name": "nope", "content": "error: Unknown function"},
    ]  # an answer given with a result is in the prompt: no request to answer
    # without tools: no guidance
    plain = build_messages(ctx)
    assert plain[0] == {"role": "system", "content": INSTRUCTIONS}
    # the first results of a conversation: the model is asked for the answer
    first = ChatContext(ctx.items[:4])
    assert build_messages(first, tools=[get_time])[-1] == {
        "role": "user",
        "content": ANSWER_REQUEST,
    }


def test_prefix_is_stable() -> None:
    """Same instructions and tools (in any order) give byte-identical leading messages and tools."""
    a = ChatContext()
    a.add_message(role="system", content=INSTRUCTIONS)
    a.add_message(role="user", content="hi")
    b = a.copy()
    b.add_message(role="assistant", content="Hello!")
    b.add_message(role="user", content="What time is it?")
    ma, mb = (
        build_messages(a, tools=[get_time, get_weather]),
        build_messages(b, tools=[get_weather, get_time]),
    )
    assert ma == mb[: len(ma)]
    assert json.dumps(tool_schemas([get_time, get_weather])) == json.dumps(
        tool_schemas([get_weather, get_time])
    )
    schema = tool_schemas([get_time])[0]["function"]["parameters"]
    assert schema == {"type": "object", "properties": {}}  # nothing for the model to copy
    # developer role and a missing system prompt
    c = ChatContext()
    c.add_message(role="user", content="x")
    assert build_messages(c, tools=[get_time])[0] == {"role": "system", "content": TOOL_GUIDANCE}


def test_clean_arguments_drops_copied_schema() -> None:
    echoed = '{"properties": {}, "type": "object"}'
    assert clean_arguments(get_time, echoed) == "{}"
    assert clean_arguments(get_weather, '{"city": "Oslo", "type": "object"}') == '{"city": "Oslo"}'
    assert clean_arguments(get_weather, '{"city": "Oslo"}') == '{"city": "Oslo"}'
    assert clean_arguments(get_weather, "not json") == "not json"


def test_bad_arguments() -> None:
    with pytest.raises(ValueError):
        LlamaLLM(n_ctx=512, max_tokens=600)


# --- errors -----------------------------------------------------------------------------------
async def collect_error(llm: LlamaLLM) -> LLMError:
    ctx = ChatContext()
    ctx.add_message(role="user", content="hi")
    try:
        with pytest.raises(LLMError) as ei:
            await llm.chat(chat_ctx=ctx).collect()
        return ei.value
    finally:
        await llm.aclose()


async def test_llama_cpp_missing_names_the_extra(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"GGUF" + b"\0" * 64)
    monkeypatch.setitem(sys.modules, "llama_cpp", None)  # makes `import llama_cpp` fail
    err = await collect_error(LlamaLLM(model=str(gguf)))
    assert not err.recoverable
    assert "llama-cpp-python" in err.message and "pip install 'voicetui[local]'" in err.message


@needs_llama
async def test_missing_model_packages(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    entry = model_store.CatalogModel(
        name="ghost",
        filename="ghost.gguf",
        parts=model_store._split_parts("ghost-model-part", 2),
        size=10,
        sha256=None,
    )
    monkeypatch.setitem(model_store.CATALOG, "ghost", entry)
    err = await collect_error(LlamaLLM(model="ghost", cache_dir=tmp_path))
    assert not err.recoverable
    assert "ghost-model-part1, ghost-model-part2" in err.message


@needs_llama
async def test_unknown_model() -> None:
    err = await collect_error(LlamaLLM(model="gpt-9"))
    assert "unknown model 'gpt-9'" in err.message and not err.recoverable


@needs_llama
async def test_corrupt_gguf_fails_to_load(tmp_path: Path) -> None:
    gguf = tmp_path / "broken.gguf"
    gguf.write_bytes(b"GGUF" + b"\x03\0\0\0" + b"\xff" * 256)
    err = await collect_error(LlamaLLM(model=str(gguf)))
    assert not err.recoverable
    assert f"cannot load the model {gguf}" in err.message


async def test_closed_llm_refuses() -> None:
    llm = LlamaLLM(model="gpt-9")
    await llm.aclose()
    err = await collect_error(llm)
    assert "closed" in err.message


# --- the real model ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def llm() -> Iterator[LlamaLLM]:
    # a fixed seed: the same prompt gives the same reply, run after run. One thread: when other
    # processes load the 2 cores, llama.cpp's 2 threads stall on each other (measured 1-4 tok/s
    # against a steady 17 tok/s with one thread); on an idle machine 2 threads give ~41 tok/s.
    model = LlamaLLM(seed=7, n_threads=1)
    yield model
    asyncio.run(model.aclose())


class Clock(Agent):
    def __init__(self) -> None:
        super().__init__(instructions=INSTRUCTIONS)
        self.calls = 0

    @function_tool
    async def get_time(self) -> dict[str, str]:
        """Get the current local time."""
        self.calls += 1
        return {"time": "14:35"}


async def start_session(llm: LlamaLLM, agent: Agent) -> tuple[AgentSession[None], list[LLMMetrics]]:
    session: AgentSession[None] = AgentSession(llm=llm)
    session.output.transcription = FakeTextOutput()
    metrics: list[LLMMetrics] = []
    llm.on("metrics_collected", metrics.append)
    await session.start(agent)
    return session, metrics


@pytest.mark.slow
@needs_model
async def test_prewarm_reports_progress_and_primes(
    llm: LlamaLLM, caplog: pytest.LogCaptureFixture
) -> None:
    agent = Clock()
    seen: list[tuple[str, int, int]] = []
    t0 = time.perf_counter()
    caplog.set_level(logging.INFO, logger="voicetui.plugins.local")
    await llm.prewarm(
        instructions=agent.instructions, tools=agent.tools, progress=lambda *a: seen.append(a)
    )
    # every report has arrived when prewarm returns (the caller reports "ready" next)
    print(f"prewarm (assemble/verify + load + prime): {time.perf_counter() - t0:.2f}s")
    assert ("load", 1, 1) in seen and seen[-1] == ("prime", 1, 1)
    assert llm.model_path is not None and llm.model_path.name.endswith(".gguf")
    assert llm.model == "qwen2.5-coder-0.5b" and llm.provider == "llama.cpp"
    # llama.cpp's ~150 loader lines (and its warnings about the model file) are DEBUG; one
    # line of ours says what was loaded
    shown = [r for r in caplog.records if r.levelno >= logging.INFO]
    assert [r.name for r in shown] == ["voicetui.plugins.local.llama"], [
        r.getMessage()[:80] for r in shown
    ]
    assert shown[0].getMessage().startswith("loaded qwen2.5-coder-0.5b-instruct-q4_k_m.gguf")


@pytest.mark.slow
@needs_model
async def test_tool_call_through_the_session(llm: LlamaLLM) -> None:
    agent = Clock()
    await llm.prewarm(instructions=agent.instructions, tools=agent.tools)
    session, metrics = await start_session(llm, agent)
    result = await session.run(user_input="What time is it?")
    result.expect.next_event().is_function_call(name="get_time", arguments={})
    result.expect.next_event().is_function_call_output(is_error=False)
    msg = result.expect.next_event().is_message(role="assistant")
    text = msg.item.text_content or ""
    assert "14:35" in text or "2:35" in text, text
    assert "{" not in text
    assert agent.calls == 1
    # usage reached the metrics, and the primed prefix was reused
    first = metrics[0]
    assert first.completion_tokens > 0 and first.prompt_tokens > 0
    assert first.prompt_cached_tokens > first.prompt_tokens // 2
    assert first.ttft > 0
    await session.aclose()


@pytest.mark.slow
@needs_model
async def test_plain_question_is_answered_as_text(llm: LlamaLLM) -> None:
    agent = Clock()
    session, _ = await start_session(llm, agent)
    result = await session.run(user_input="What is the capital of France?")
    msg = result.expect.next_event().is_message(role="assistant")
    result.expect.no_more_events()
    text = msg.item.text_content or ""
    assert "Paris" in text
    assert not any(c in text for c in "{}") and "tool_call" not in text
    assert session.output.transcription.messages == [text]  # type: ignore[union-attr]
    assert agent.calls == 0
    await session.aclose()


@pytest.mark.slow
@needs_model
async def test_after_a_reply_the_next_users_header_is_primed(llm: LlamaLLM) -> None:
    # the next request evaluates only the user's words and the assistant's header: the reply
    # and the template's "<|im_end|>\n<|im_start|>user\n" were evaluated after the reply
    agent = Agent(instructions=INSTRUCTIONS)
    session, metrics = await start_session(llm, agent)
    await session.run(user_input="What is the capital of France?")
    question = "And of Italy?"
    await session.run(user_input=question)
    await session.aclose()
    worker = llm.worker
    words = await asyncio.wrap_future(
        worker._submit(lambda: len(worker._llm.tokenize(question.encode(), add_bos=False)))
    )
    second = metrics[-1]
    header = 5  # <|im_end|> \n <|im_start|> assistant \n
    assert second.prompt_tokens - second.prompt_cached_tokens == words + header, second


@needs_model
async def test_cancel_mid_stream_frees_the_worker(llm: LlamaLLM) -> None:
    ctx = ChatContext()
    ctx.add_message(role="system", content=INSTRUCTIONS)
    ctx.add_message(role="user", content="Count from 1 to 300, separated by commas.")
    metrics: list[LLMMetrics] = []
    llm.on("metrics_collected", metrics.append)
    stream = llm.chat(chat_ctx=ctx)
    pieces = 0
    first_at = 0.0
    async for chunk in stream:
        if chunk.delta and chunk.delta.content:
            pieces += 1
            if pieces == 1:
                first_at = time.perf_counter()
            if pieces == 10:
                break
    t0 = time.perf_counter()
    per_token = (t0 - first_at) / 9
    await stream.aclose()
    await asyncio.wrap_future(llm.worker.submit_barrier())
    freed = time.perf_counter() - t0
    # the ~246 tokens left would take 246 * per_token: the generation stopped within a few
    assert freed < max(1.0, 5 * per_token), (freed, per_token)
    assert metrics[-1].cancelled
    llm.off("metrics_collected", metrics.append)
    # the next request runs normally
    ctx2 = ChatContext()
    ctx2.add_message(role="system", content=INSTRUCTIONS)
    ctx2.add_message(role="user", content="Say hello.")
    text, calls = await llm.chat(chat_ctx=ctx2).collect()
    assert text.strip() and not calls


@pytest.mark.slow
@needs_model
async def test_long_history_is_trimmed_to_the_context() -> None:
    small = LlamaLLM(n_ctx=256, max_tokens=32, seed=7, n_threads=1)
    try:
        ctx = ChatContext()
        ctx.add_message(role="system", content=INSTRUCTIONS)
        for i in range(20):  # ~20 tokens per turn pair: far more than 256 - 32
            ctx.add_message(role="user", content=f"Remember the number {i}, please.")
            ctx.add_message(role="assistant", content=f"Okay, I will remember {i}.")
        ctx.add_message(role="user", content="Say hello.")
        metrics: list[LLMMetrics] = []
        small.on("metrics_collected", metrics.append)
        text, _ = await small.chat(chat_ctx=ctx).collect()
        assert text.strip()
        assert metrics[-1].prompt_tokens <= 256 - 32
    finally:
        await small.aclose()


# --- timeouts that measure progress (a scripted worker on virtual time) -------------------------
class _ScriptedWorker:
    """Stands in for LlamaWorker: the generation starts after ``queued`` seconds, evaluates
    ``prompt_tokens`` tokens, then sends ``tokens`` pieces, ``gaps[i]`` seconds apart."""

    def __init__(self, *, queued: float, prompt_tokens: int, gaps: list[float]) -> None:
        self.queued, self.prompt_tokens, self.gaps = queued, prompt_tokens, gaps

    def submit_generate(self, *args: Any) -> Any:
        import concurrent.futures as cf

        from voicetui.plugins.local._llama_worker import GenerationStats

        _messages, _tools, _sampling, cancel, sink, on_start, steering = args
        self.tools_offered = _tools
        self.steering = steering
        loop = asyncio.get_running_loop()
        fut: cf.Future[GenerationStats] = cf.Future()

        async def play() -> None:
            await asyncio.sleep(self.queued)
            on_start(self.prompt_tokens)
            for gap in self.gaps:
                await asyncio.sleep(gap)
                if cancel.is_set():
                    break
                sink(" word")
            sink(None)
            fut.set_result(GenerationStats(self.prompt_tokens, 0, len(self.gaps), "stop"))

        self._task = loop.create_task(play())  # cancelled by the test if it never finishes
        return fut


def _scripted_llm(worker: _ScriptedWorker) -> LlamaLLM:
    import concurrent.futures as cf

    llm = LlamaLLM()
    ready: cf.Future[Path] = cf.Future()
    ready.set_result(Path("/scripted.gguf"))
    llm._ready = ready
    llm._worker = worker  # type: ignore[assignment]
    return llm


def _ctx() -> ChatContext:
    ctx = ChatContext()
    ctx.add_message(role="user", content="hello")
    return ctx


@pytest.mark.looptime
async def test_waiting_for_the_worker_and_a_long_prompt_do_not_time_out() -> None:
    from voicetui.agents.types import APIConnectOptions

    # 3 s behind another job, then a 200-token prompt taking 3.5 s: fine with a 1 s timeout,
    # which only applies between tokens
    llm = _scripted_llm(_ScriptedWorker(queued=3.0, prompt_tokens=200, gaps=[3.5, 0.5, 0.9]))
    opts = APIConnectOptions(max_retry=0, timeout=1.0)
    text, _ = await llm.chat(chat_ctx=_ctx(), conn_options=opts).collect()
    assert text == " word word word"


@pytest.mark.looptime
@pytest.mark.parametrize(
    ("worker", "after"),
    [
        # never started: the timeout plus the queue allowance (5 x timeout) runs out
        (_ScriptedWorker(queued=100.0, prompt_tokens=10, gaps=[0.1]), 6.0),
        # a short prompt that yields no token: timeout + 20 ms a prompt token
        (_ScriptedWorker(queued=0.5, prompt_tokens=50, gaps=[100.0]), 0.5 + 1.0 + 1.0),
        # stalls between two tokens
        (_ScriptedWorker(queued=0.0, prompt_tokens=0, gaps=[0.2, 0.2, 100.0]), 0.4 + 1.0),
    ],
)
async def test_a_stalled_local_llm_still_times_out(worker: _ScriptedWorker, after: float) -> None:
    from voicetui.agents.types import APIConnectOptions

    llm = _scripted_llm(worker)
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(LLMError, match="timed out") as info:
        await llm.chat(
            chat_ctx=_ctx(), conn_options=APIConnectOptions(max_retry=0, timeout=1.0)
        ).collect()
    assert info.value.recoverable
    assert loop.time() - started == pytest.approx(after, abs=0.05)
    worker._task.cancel()


@pytest.mark.looptime
@pytest.mark.parametrize(
    ("after_tool_results", "tool_choice", "steering"),
    [
        (False, None, Steering()),
        (True, None, Steering(no_calls=True)),
        (True, "required", Steering(prefix='<tool_call>\n{"name": "')),
        (False, "none", Steering(no_calls=True)),
        (
            True,
            {"type": "function", "function": {"name": "get_time"}},
            Steering(prefix='<tool_call>\n{"name": "get_time", "arguments":'),
        ),
    ],
)
async def test_tool_choice_steers_the_embedded_model(
    after_tool_results: bool, tool_choice: Any, steering: Steering
) -> None:
    """The tools stay in the prompt (its cached prefix); no call right after tool results (the
    0.5B model would call the same tool again) nor with tool_choice="none"; a required call, or
    a named one, is the start of the reply."""
    worker = _ScriptedWorker(queued=0.0, prompt_tokens=5, gaps=[0.1])
    llm = _scripted_llm(worker)
    ctx = _ctx()
    if after_tool_results:
        ctx.items.append(FunctionCall(call_id="c1", name="get_time", arguments="{}"))
        ctx.items.append(
            FunctionCallOutput(call_id="c1", name="get_time", output="14:35", is_error=False)
        )
    tools = Clock().tools
    await llm.chat(chat_ctx=ctx, tools=tools, tool_choice=tool_choice).collect()
    assert worker.tools_offered
    assert worker.steering == steering


def test_thread_counts_are_checked() -> None:
    with pytest.raises(ValueError, match="n_threads"):
        LlamaLLM(n_threads=0)
    with pytest.raises(ValueError, match="n_threads"):
        LlamaLLM(n_threads=1, n_threads_batch=0)
    llm = LlamaLLM(n_threads=1, n_threads_batch=2)
    assert (llm.worker.n_threads, llm.worker.n_threads_batch) == (1, 2)
    assert LlamaLLM(n_threads=2).worker.n_threads_batch == 2


async def test_prewarm_primes_the_agents_examples_too() -> None:
    import concurrent.futures as cf

    from voicetui.default_agent import DefaultAgent
    from voicetui.plugins.prewarm import SessionModels, prewarm_models, prompt_prefix

    class PrimeRecorder(_ScriptedWorker):
        def submit_prime(self, variants: Any, tools: Any) -> cf.Future[int]:
            self.variants = variants
            done: cf.Future[int] = cf.Future()
            done.set_result(1)
            return done

    worker = PrimeRecorder(queued=0, prompt_tokens=0, gaps=[])
    llm = _scripted_llm(worker)
    agent = DefaultAgent(notes_path=Path("/nonexistent/notes.json"))
    assert prompt_prefix(agent) and prompt_prefix(Clock()) == []
    errors = await prewarm_models(
        SessionModels(stt=None, vad=None, llm=llm, tts=None),
        instructions=agent.instructions,
        tools=agent.tools,
        history=prompt_prefix(agent),
    )
    assert errors == []
    for variant, user in zip(worker.variants, ("a", "b"), strict=True):
        texts = [str(m.get("content")) for m in variant]
        assert texts[0].startswith(agent.instructions[:40])  # the system prompt first
        assert "What is 2 plus 2?" in texts  # then the made-up examples
        assert "2 plus 2 is 4." in texts
        assert texts[-1] == user  # and the user's words last
