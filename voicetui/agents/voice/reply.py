"""One LLM step of a reply: LLM → text and sentence TTS → audio, tools run alongside the
playout, then the step's tool calls recorded and the next step (or a handoff) scheduled."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterable
from typing import TYPE_CHECKING

from livekit import rtc

from ..llm import ChatContext
from ..utils.aio import cancel_and_wait, now
from .agent import Agent, ModelSettings
from .events import FunctionToolsExecutedEvent, FunctionToolsStartedEvent, RunContext
from .generation import (
    TOOL_INTERRUPTION_TIMEOUT,
    ToolOutcome,
    TTSGenerationData,
    cancelled_outcome,
    execute_tools,
    perform_llm_inference,
    perform_tts_inference,
)
from .speech_handle import SpeechHandle
from .speech_output import add_assistant_message, speak
from .turn_latency import current_turn_id

if TYPE_CHECKING:
    from .agent_activity import AgentActivity

logger = logging.getLogger("voicetui.agents.voice")


async def run_reply(
    activity: AgentActivity,
    handle: SpeechHandle,
    *,
    chat_ctx: ChatContext,
    model_settings: ModelSettings,
) -> None:
    if handle._turn_timing is not None:  # (this task's metrics belong to that turn)
        current_turn_id.set(handle._turn_timing.turn_id)
    tools = activity.tools
    audio_out = activity.audio_output()
    use_tts = audio_out is not None and activity.tts is not None

    llm_task, llm_data = perform_llm_inference(
        activity._agent.llm_node, chat_ctx, tools, model_settings, text_outputs=2 if use_tts else 1
    )
    timing = handle._turn_timing
    if timing is not None and timing.handed_off:  # the first reply of the agent handed to
        timing.handed_off = False
        timing.mark("handoff", llm_data.started_at)
    tts_task: asyncio.Task[None] | None = None
    tts_data: TTSGenerationData | None = None
    frames: AsyncIterable[rtc.AudioFrame] | None = None
    if use_tts:
        tts_task, tts_data = perform_tts_inference(
            activity._agent.tts_node, llm_data.text_chs[1], model_settings
        )
        frames = tts_data.audio_ch
    tool_task: asyncio.Task[list[ToolOutcome]] | None = None
    stop_tools = asyncio.Event()

    async def run_tools() -> list[ToolOutcome]:
        await asyncio.wait({llm_task})
        if llm_task.cancelled() or llm_task.exception() is not None:
            return []
        calls = llm_data.function_calls
        if not calls:
            return []
        if handle.step_index >= activity.options.max_tool_steps:
            logger.warning(
                "%s: max_tool_steps (%d) reached, ignoring %d tool call(s)",
                activity._agent.label,
                activity.options.max_tool_steps,
                len(calls),
            )
            return []
        activity._session._emit_event(
            FunctionToolsStartedEvent(function_calls=list(calls), speech_id=handle.id)
        )
        return await execute_tools(
            calls,
            tools,
            lambda call: RunContext(
                session=activity._session, speech_handle=handle, function_call=call
            ),
            lambda v: isinstance(v, Agent),
            intercept=activity._session.tool_call_interceptor,
            stop=stop_tools,
        )

    authorized = False
    try:
        await handle.wait_if_not_interrupted([handle._authorized])
        if not handle.interrupted:
            authorized = True
            activity._session._update_agent_state("thinking")
            tool_task = asyncio.create_task(run_tools(), name="tool_execution")
        spoken = await speak(
            activity,
            handle,
            llm_data.text_chs[0],
            frames,
            audio_out if use_tts else None,
            tts_task,
            tts_data,
            prerequisite=llm_task,
        )
    finally:
        # (interrupted before the LLM finished: its tool calls are dropped with it)
        await cancel_and_wait(llm_task, *(t for t in (tts_task,) if t is not None))

    llm_failed = False
    if llm_task.done() and not llm_task.cancelled():
        if (exc := llm_task.exception()) is None:
            activity._session._model_succeeded("llm")
        elif authorized:  # (a discarded preemptive reply's failure concerns nobody)
            llm_failed = True
            activity._report_model_error(exc, default_source="llm")
            activity._session._on_speech_failed(handle, exc)
            handle._cancel()
            spoken.interrupted = True
        else:
            llm_failed = True
    if tts_task is not None and tts_task.done() and not tts_task.cancelled():
        if tts_task.exception() is None:
            activity._session._model_succeeded("tts")

    if spoken.text:  # what was heard is in history now, before the tools finish
        add_assistant_message(activity, handle, spoken, llm_data=llm_data, tts_data=tts_data)
    if tool_task is None or llm_failed:
        if tool_task is not None:
            await cancel_and_wait(tool_task)
        return
    if not tool_task.done():
        # this speech's own audio is out: the next speech may play while its tools run (a
        # tool that awaits session.generate_reply() needs exactly that)
        activity._on_generation_done(handle)
    try:
        await handle.wait_if_not_interrupted([tool_task])
        if not tool_task.done():
            # interrupted while tools run: a call that finishes soon keeps its result
            await asyncio.wait({tool_task}, timeout=TOOL_INTERRUPTION_TIMEOUT)
            stop_tools.set()
        outcomes = await tool_task
    except asyncio.CancelledError:
        await cancel_and_wait(tool_task)
        raise
    except Exception as e:
        activity._session._report_error("tool", f"tool execution failed: {e}", e)
        return
    if outcomes:
        timing = handle._turn_timing
        if timing is not None and spoken.first_audio_at is None and llm_data.done_at is not None:
            # nothing heard yet: the user waited for this round and its tools
            timing.mark("llm", llm_data.done_at)
            timing.mark("tools", now())
        _record_tool_step(activity, handle, outcomes, heard_audio=spoken.first_audio_at is not None)


def _record_tool_step(
    activity: AgentActivity, handle: SpeechHandle, outcomes: list[ToolOutcome], *, heard_audio: bool
) -> None:
    if handle.interrupted:
        # the user cut the agent off: its handoffs are not applied (the LLM is told so)
        outcomes = [
            cancelled_outcome(
                o.execution.call,
                duration=o.execution.duration,
                output=f"The handoff to {o.handoff.label} was not applied: the user interrupted.",
            )
            if o.handoff is not None
            else o
            for o in outcomes
        ]
    executions = [o.execution for o in outcomes]
    for ex in executions:
        activity._agent._chat_ctx.append(ex.call)
        handle._add_item(ex.call)
        activity._session._history_append(ex.call)
    for ex in executions:
        activity._agent._chat_ctx.append(ex.output)
        handle._add_item(ex.output)
        activity._session._history_append(ex.output)
    activity._session._emit_event(
        FunctionToolsExecutedEvent(executions=executions, speech_id=handle.id)
    )
    if handle.interrupted:
        return  # the results are kept, but nobody asked for more speech
    handoffs = [o.handoff for o in outcomes if o.handoff is not None]
    if handoffs:
        if len(handoffs) > 1:
            logger.warning("several tools handed off in one step; using the first")
        timing = handle._turn_timing
        if timing is not None and not heard_audio:
            # the user still waits: the next agent's first reply answers this turn
            timing.handed_off = True
            activity._session._handoff_timing = timing
        activity._session._schedule_agent_update(handoffs[0])
        return
    if any(o.stop_response for o in outcomes):
        return
    if not any(o.reply_required for o in outcomes):
        return
    step = handle.step_index + 1
    last_step = step >= activity.options.max_tool_steps
    reply = SpeechHandle(
        allow_interruptions=handle.allow_interruptions, step_index=step, parent=handle
    )
    if not heard_audio:
        reply._turn_timing = handle._turn_timing  # the user still waits for a first word
    activity._emit_speech_created(reply, source="tool_response", user_initiated=False)
    activity._schedule_speech(
        reply,
        run_reply(
            activity,
            reply,
            chat_ctx=activity._agent._chat_ctx.copy(),
            model_settings=ModelSettings(tool_choice="none" if last_step else None),
        ),
        force=True,
    )
