"""Speaking one speech: audio and transcript to the outputs in sync, waiting for playout, and
on interruption working out what the user actually heard."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from livekit import rtc

from ..llm import ChatMessage
from ..utils.aio import cancel_and_wait, now
from .agent import ModelSettings
from .generation import (
    AudioForwardData,
    LLMGenerationData,
    SyncedTranscript,
    TTSGenerationData,
    forward_audio,
    iterate_node,
    played_text,
)
from .io import AudioOutput, PlaybackFinishedEvent, PlaybackStartedEvent
from .speech_handle import SpeechHandle

if TYPE_CHECKING:
    from .agent_activity import AgentActivity

logger = logging.getLogger("voicetui.agents.voice")

# how long to wait for an audio output to report where playback stopped after clear_buffer()
_PLAYOUT_REPORT_TIMEOUT = 2.0


@dataclass
class Spoken:
    """What one speech put in front of the user."""

    text: str
    interrupted: bool
    started_speaking_at: float | None  # wall clock
    stopped_speaking_at: float | None
    first_audio_at: float | None  # loop clock, when the first frame was heard
    tts_ttfb: float | None


async def speak(
    activity: AgentActivity,
    handle: SpeechHandle,
    text: AsyncIterable[str],
    frames: AsyncIterable[rtc.AudioFrame] | None,
    audio_out: AudioOutput | None,
    tts_task: asyncio.Task[None] | None,
    tts_data: TTSGenerationData | None,
    prerequisite: asyncio.Task[Any] | None = None,
) -> Spoken:
    """Play one speech's audio and transcript; returns what was heard."""
    if handle.interrupted:
        return Spoken("", True, None, None, None, None)
    transcript = SyncedTranscript(
        activity.session.output.transcription, synced=audio_out is not None
    )
    started: dict[str, float] = {}

    def on_started(ev: PlaybackStartedEvent) -> None:
        if "loop" not in started:
            started["loop"] = ev.created_at
            started["wall"] = time.time()
            activity.session._update_agent_state("speaking")

    async def forward_transcript() -> None:
        async for delta in iterate_node(activity.agent.transcription_node(text, ModelSettings())):
            await handle._wait_until_released()
            await transcript.push_text(delta)
            if audio_out is None and "loop" not in started:
                on_started(PlaybackStartedEvent(now()))

    cut_by_output: list[PlaybackFinishedEvent] = []

    def on_finished(ev: PlaybackFinishedEvent) -> None:
        if ev.interrupted and not handle.interrupted and not cut_by_output:
            cut_by_output.append(ev)

    fwd = AudioForwardData()
    tasks = [asyncio.create_task(forward_transcript(), name="forward_transcript")]
    if audio_out is not None and frames is not None:
        audio_out.on("playback_started", on_started)
        audio_out.on("playback_finished", on_finished)
        tasks.append(
            asyncio.create_task(
                forward_audio(frames, audio_out, fwd, transcript, handle._wait_until_released),
                name="forward_audio",
            )
        )
    tts_failed = False
    try:
        waits: list[asyncio.Future[Any]] = list(tasks)
        if prerequisite is not None:
            waits.append(prerequisite)
        await handle.wait_if_not_interrupted(waits)
        if tts_task is not None and tts_task.done() and not tts_task.cancelled():
            exc = tts_task.exception()
            if exc is not None:
                tts_failed = True
                activity._report_model_error(
                    exc, default_source="tts", note="the reply is shown as text only"
                )
        if audio_out is not None and not handle.interrupted:
            playout = asyncio.ensure_future(audio_out.wait_for_playout())
            await handle.wait_if_not_interrupted([playout])
            if not playout.done():
                playout.cancel()
        position: float | None = None
        # the output stopped playing it by itself (its device went away): as heard
        cut_off = not handle.interrupted and bool(cut_by_output)
        if cut_off:
            position = cut_by_output[0].playback_position
        interrupted = handle.interrupted or cut_off
        if handle.interrupted and audio_out is not None:
            await cancel_and_wait(*tasks)
            audio_out.clear_buffer()
            try:
                ev = await asyncio.wait_for(audio_out.wait_for_playout(), _PLAYOUT_REPORT_TIMEOUT)
                position = ev.playback_position
            except TimeoutError:
                logger.warning("%s did not report its playback position", audio_out.label)
                position = 0.0
    finally:
        await cancel_and_wait(*tasks)
        if audio_out is not None:
            audio_out.off("playback_started", on_started)
            audio_out.off("playback_finished", on_finished)
    await transcript.finish(release_all=not interrupted or audio_out is None or tts_failed)
    if not interrupted or tts_failed:
        heard = transcript.text
    elif audio_out is None:
        heard = transcript.text
    else:
        heard = played_text(transcript.text, fwd, position or 0.0)
    return Spoken(
        text=heard.strip(),
        interrupted=interrupted,
        started_speaking_at=started.get("wall"),
        stopped_speaking_at=time.time() if started else None,
        first_audio_at=started.get("loop"),
        tts_ttfb=tts_data.ttfb if tts_data is not None else None,
    )


def add_assistant_message(
    activity: AgentActivity,
    handle: SpeechHandle,
    spoken: Spoken,
    *,
    llm_data: LLMGenerationData | None = None,
    tts_data: TTSGenerationData | None = None,
) -> ChatMessage:
    """What was spoken of a speech (and how fast) as the agent's chat message: into the
    agent's chat context, the speech handle and the session's conversation events."""
    msg = ChatMessage(role="assistant", content=[spoken.text], interrupted=spoken.interrupted)
    m = msg.metrics
    m.started_speaking_at = spoken.started_speaking_at
    m.stopped_speaking_at = spoken.stopped_speaking_at
    m.llm_node_ttft = llm_data.ttft if llm_data is not None else None
    m.tts_node_ttfb = spoken.tts_ttfb
    timing = handle._turn_timing
    if timing is not None:
        m.turn_id = timing.turn_id
        m.end_of_turn_delay = timing.end_of_turn_delay
        m.typed_input = timing.typed
        first = spoken.first_audio_at
        if first is not None and timing.stopped_speaking_at is not None:
            m.e2e_latency = first - timing.stopped_speaking_at
            m.latency_stages = timing.stages(
                [
                    ("llm", llm_data.first_token_at if llm_data is not None else None),
                    ("tts", tts_data.first_audio_at if tts_data is not None else None),
                    ("playout", first),
                ],
                first,
            )
    activity.agent._chat_ctx.append(msg)
    handle._add_item(msg)
    activity.session._conversation_item_added(msg)
    return msg
