"""The pieces of one reply: LLM inference, TTS inference, forwarding audio and text to the
outputs, working out what was actually heard, and running tools."""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
from collections.abc import AsyncIterable, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from livekit import rtc

from ..audio import FrameResampler, frame_duration
from ..llm import ChatChunk, ChatContext, FunctionCall, FunctionCallOutput, FunctionTool
from ..llm.tool_context import StopResponse, ToolArgumentsError, ToolError
from ..tts import TEXT_KEY
from ..utils.aio import Chan, cancel_and_wait, now
from .agent import ModelSettings
from .events import ToolExecution
from .io import AudioOutput, TextOutput

logger = logging.getLogger("voicetui.agents.voice")


async def iterate_node(result: Any) -> AsyncIterable[Any]:
    """Nodes may be async generators, return an async iterable, a string, or None."""
    if inspect.isawaitable(result):
        result = await result
    if result is None:
        return
    if isinstance(result, str):
        yield result
        return
    async for item in result:
        yield item


@dataclass
class LLMGenerationData:
    text_chs: list[Chan[str]]
    function_calls: list[FunctionCall] = field(default_factory=list)
    generated_text: str = ""
    started_at: float = field(default_factory=now)
    ttft: float | None = None
    done_at: float | None = None
    """When the stream ended (its tool calls come last)."""

    @property
    def first_token_at(self) -> float | None:
        return self.started_at + self.ttft if self.ttft is not None else None


def perform_llm_inference(
    node: Callable[[ChatContext, list[FunctionTool], ModelSettings], Any],
    chat_ctx: ChatContext,
    tools: list[FunctionTool],
    model_settings: ModelSettings,
    *,
    text_outputs: int,
) -> tuple[asyncio.Task[None], LLMGenerationData]:
    data = LLMGenerationData(text_chs=[Chan() for _ in range(text_outputs)])

    async def run() -> None:
        try:
            async for chunk in iterate_node(node(chat_ctx, tools, model_settings)):
                text: str | None = None
                if isinstance(chunk, str):
                    text = chunk
                elif isinstance(chunk, ChatChunk) and chunk.delta is not None:
                    text = chunk.delta.content
                    for tc in chunk.delta.tool_calls:
                        if data.ttft is None:
                            data.ttft = now() - data.started_at
                        data.function_calls.append(
                            FunctionCall(call_id=tc.call_id, name=tc.name, arguments=tc.arguments)
                        )
                if text:
                    if data.ttft is None:
                        data.ttft = now() - data.started_at
                    data.generated_text += text
                    for ch in data.text_chs:
                        ch.send_nowait(text)
            data.done_at = now()
        finally:
            for ch in data.text_chs:
                ch.close()

    return asyncio.create_task(run(), name="llm_inference"), data


@dataclass
class TTSGenerationData:
    audio_ch: Chan[rtc.AudioFrame] = field(default_factory=Chan)
    started_at: float = field(default_factory=now)
    first_text_at: float | None = None
    ttfb: float | None = None
    """From the first text given to the TTS node to its first audio frame."""

    @property
    def first_audio_at(self) -> float | None:
        if self.ttfb is None:
            return None
        return (self.first_text_at or self.started_at) + self.ttfb


def perform_tts_inference(
    node: Callable[[AsyncIterable[str], ModelSettings], Any],
    text: AsyncIterable[str],
    model_settings: ModelSettings,
) -> tuple[asyncio.Task[None], TTSGenerationData]:
    data = TTSGenerationData()

    async def timed_text() -> AsyncIterable[str]:
        async for delta in text:
            if data.first_text_at is None:
                data.first_text_at = now()
            yield delta

    async def run() -> None:
        try:
            async for frame in iterate_node(node(timed_text(), model_settings)):
                if data.ttfb is None:
                    data.ttfb = now() - (data.first_text_at or data.started_at)
                data.audio_ch.send_nowait(frame)
        finally:
            data.audio_ch.close()

    return asyncio.create_task(run(), name="tts_inference"), data


class SyncedTranscript:
    """Releases the agent's transcription to the text output in step with its audio: text is
    held back until the audio of the sentence it belongs to starts."""

    def __init__(self, output: TextOutput | None, *, synced: bool) -> None:
        self._output = output
        self._synced = synced
        self._text = ""
        self._released = 0
        self._audio_chars = 0  # non-space characters whose audio has started
        self.first_text_at: float | None = None

    @property
    def text(self) -> str:
        return self._text

    async def push_text(self, delta: str) -> None:
        self._text += delta
        await self._release(len(self._text) if not self._synced else self._synced_limit())

    async def on_audio_segment(self, segment_text: str) -> None:
        self._audio_chars += sum(1 for c in segment_text if not c.isspace())
        await self._release(self._synced_limit())

    async def finish(self, *, release_all: bool) -> None:
        if release_all:
            await self._release(len(self._text))
        if self._output is not None and self._released:
            self._output.flush()

    def _synced_limit(self) -> int:
        count = 0
        for i, c in enumerate(self._text):
            if not c.isspace():
                count += 1
                if count > self._audio_chars:
                    return i
        return len(self._text)

    async def _release(self, limit: int) -> None:
        if limit <= self._released:
            return
        chunk = self._text[self._released : limit]
        self._released = limit
        if self.first_text_at is None:
            self.first_text_at = now()
        if self._output is not None:
            await self._output.capture_text(chunk)


@dataclass
class AudioForwardData:
    segments: list[tuple[float, str]] = field(default_factory=list)
    """(offset in seconds into this speech's audio, text whose audio starts there)"""
    captured: float = 0.0
    first_frame_at: float | None = None


async def forward_audio(
    audio_ch: AsyncIterable[rtc.AudioFrame],
    output: AudioOutput,
    data: AudioForwardData,
    transcript: SyncedTranscript,
    released: Callable[[], Awaitable[None]] | None = None,
) -> None:
    """Captures frames into ``output`` (resampled to its rate), noting where each sentence's
    audio starts; flushes the segment at the end, whatever happens. ``released`` is awaited
    before each frame (a speech on hold waits there)."""
    resampler: FrameResampler | None = None
    try:
        async for frame in audio_ch:
            if released is not None:
                await released()
            text = frame.userdata.get(TEXT_KEY)
            if isinstance(text, str) and text:
                data.segments.append((data.captured, text))
                await transcript.on_audio_segment(text)
            if data.first_frame_at is None:
                data.first_frame_at = now()
            rate = output.sample_rate
            if rate is not None and frame.sample_rate != rate:
                if resampler is None:
                    resampler = FrameResampler(
                        frame.sample_rate, rate, num_channels=frame.num_channels
                    )
                frames = resampler.push(frame)
            else:
                frames = [frame]
            for f in frames:
                await output.capture_frame(f)
            data.captured += frame_duration(frame)
        if resampler is not None:
            for f in resampler.flush():
                await output.capture_frame(f)
    finally:
        output.flush()


def played_text(full_text: str, data: AudioForwardData, position: float) -> str:
    """The part of ``full_text`` whose audio was heard, given the playback position."""
    if position >= data.captured - 1e-6 and data.captured > 0:
        return full_text
    if not data.segments:
        if data.captured <= 0:
            return ""
        return _word_prefix(full_text, position / data.captured)
    heard: list[str] = []
    for i, (start, text) in enumerate(data.segments):
        end = data.segments[i + 1][0] if i + 1 < len(data.segments) else data.captured
        if position >= end:
            heard.append(text)
        elif position > start and end > start:
            part = _word_prefix(text, (position - start) / (end - start))
            if part:
                heard.append(part)
            break
        else:
            break
    return " ".join(h.strip() for h in heard if h.strip())


def _word_prefix(text: str, ratio: float) -> str:
    words = text.split()
    n = int(len(words) * max(0.0, min(1.0, ratio)))
    return " ".join(words[:n])


@dataclass(frozen=True)
class RunTool:
    """Tool-call interception: run the tool, with ``arguments`` (JSON) instead of the LLM's."""

    arguments: str | None = None


@dataclass(frozen=True)
class MockToolResult:
    """Tool-call interception: do not run the tool; the LLM gets ``output`` as its result."""

    output: str


@dataclass(frozen=True)
class MockToolError:
    """Tool-call interception: do not run the tool; the LLM gets ``message`` as its error."""

    message: str


ToolCallDecision = RunTool | MockToolResult | MockToolError
ToolCallInterceptor = Callable[[FunctionCall], Awaitable[ToolCallDecision]]
"""Called before each tool call runs (e.g. the TUI's break-on-tool-call)."""


@dataclass
class ToolOutcome:
    execution: ToolExecution
    handoff: Any = None  # an Agent
    stop_response: bool = False
    reply_required: bool = False


TOOL_INTERRUPTION_TIMEOUT = 5.0
"""Seconds a tool that is running when its speech is interrupted may take to finish: its result
is kept (the LLM must not call it again); after that it is cancelled and recorded as such."""

CANCELLED_TOOL_OUTPUT = "The call was cancelled before it finished: the user interrupted."


async def execute_tools(
    calls: list[FunctionCall],
    tools: list[FunctionTool],
    make_context: Callable[[FunctionCall], Any],
    is_agent: Callable[[Any], bool],
    intercept: ToolCallInterceptor | None = None,
    *,
    stop: asyncio.Event | None = None,
) -> list[ToolOutcome]:
    """Run one step's tool calls concurrently. Every failure becomes an error output the LLM
    reads; nothing raised by a tool escapes. When ``stop`` is set, the calls still running are
    cancelled and come back as cancelled error outputs (the finished ones keep their results)."""
    by_name = {t.name: t for t in tools}
    started = now()

    async def run_one(call: FunctionCall) -> ToolOutcome:
        if intercept is not None:
            decision = await intercept(call)
            if isinstance(decision, MockToolResult | MockToolError):
                is_error = isinstance(decision, MockToolError)
                text = decision.message if isinstance(decision, MockToolError) else decision.output
                out = FunctionCallOutput(
                    call_id=call.call_id, name=call.name, output=text, is_error=is_error
                )
                return ToolOutcome(
                    ToolExecution(call=call, output=out, duration=0.0, mocked=True),
                    reply_required=True,
                )
            if decision.arguments is not None and decision.arguments != call.arguments:
                call = call.model_copy(update={"arguments": decision.arguments})
        started = now()

        def outcome(
            output: str, *, is_error: bool, exception: str | None = None, **kw: Any
        ) -> ToolOutcome:
            out = FunctionCallOutput(
                call_id=call.call_id, name=call.name, output=output, is_error=is_error
            )
            return ToolOutcome(
                ToolExecution(
                    call=call,
                    output=out,
                    duration=now() - started,
                    exception=exception,
                    handoff_agent_id=getattr(kw.get("handoff"), "id", None),
                ),
                **kw,
            )

        tool = by_name.get(call.name)
        if tool is None:
            known = ", ".join(sorted(by_name)) or "none"
            return outcome(
                f"Unknown function {call.name!r}. Available functions: {known}.",
                is_error=True,
                reply_required=True,
            )
        try:
            args = tool.parse_arguments(call.arguments)
        except ToolArgumentsError as e:
            return outcome(f"Error calling {call.name}: {e}", is_error=True, reply_required=True)
        try:
            result = await tool.invoke(make_context(call), args)
        except ToolError as e:
            return outcome(e.message, is_error=True, reply_required=True)
        except StopResponse:
            return outcome("", is_error=False, stop_response=True)
        except asyncio.CancelledError:
            raise
        except Exception as e:
            logger.exception("tool %s raised", call.name)
            return outcome(
                f"An internal error occurred while running {call.name}.",
                is_error=True,
                exception=f"{type(e).__name__}: {e}",
                reply_required=True,
            )
        handoff = None
        if is_agent(result):
            handoff, result = result, None
        elif isinstance(result, tuple) and len(result) == 2 and is_agent(result[0]):
            handoff, result = result
        if result is None:  # nothing to tell the LLM: no reply needed for this call
            return outcome("", is_error=False, handoff=handoff)
        return outcome(
            _to_output_text(result), is_error=False, handoff=handoff, reply_required=True
        )

    tasks = [asyncio.create_task(run_one(c), name=f"tool {c.name}") for c in calls]
    stopper = asyncio.create_task(stop.wait(), name="tools.stop") if stop is not None else None
    try:
        pending: set[asyncio.Future[Any]] = set(tasks)
        while pending:
            waits = pending | {stopper} if stopper is not None else pending
            done, _ = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            pending -= done
            if stopper is not None and stopper in done:
                break
    finally:
        # stopped, or cancelled ourselves (the session closes): no tool outlives its step
        await cancel_and_wait(*tasks, stopper)
    return [
        t.result() if not t.cancelled() else cancelled_outcome(call, duration=now() - started)
        for call, t in zip(calls, tasks, strict=True)
    ]


def cancelled_outcome(
    call: FunctionCall, *, duration: float, output: str = CANCELLED_TOOL_OUTPUT
) -> ToolOutcome:
    """A call that did not complete (or whose handoff was not applied), as the LLM sees it."""
    out = FunctionCallOutput(call_id=call.call_id, name=call.name, output=output, is_error=True)
    return ToolOutcome(ToolExecution(call=call, output=out, duration=duration, cancelled=True))


def _to_output_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    try:
        if hasattr(value, "model_dump_json"):
            return str(value.model_dump_json())
        return json.dumps(value, default=str, ensure_ascii=False)
    except (TypeError, ValueError):
        return str(value)
