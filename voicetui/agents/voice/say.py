"""Saying a given text (or playing given audio) as one speech: ``session.say``'s path, with
no LLM: the text is spoken through the TTS (or alongside the given audio) and, if asked, added
to the chat context as what the agent said."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable
from typing import TYPE_CHECKING, Any

from livekit import rtc

from ..utils.aio import Chan, cancel_and_wait
from .agent import ModelSettings
from .generation import TTSGenerationData, iterate_node, perform_tts_inference
from .speech_handle import SpeechHandle
from .speech_output import add_assistant_message, speak

if TYPE_CHECKING:
    from .agent_activity import AgentActivity


async def run_say(
    activity: AgentActivity,
    handle: SpeechHandle,
    text: str | AsyncIterable[str],
    audio: AsyncIterable[rtc.AudioFrame] | None,
    add_to_chat_ctx: bool,
) -> None:
    audio_out = activity.audio_output()
    use_tts = audio_out is not None and audio is None and activity.tts is not None
    text_chs: list[Chan[str]] = [Chan() for _ in range(2 if use_tts else 1)]

    async def feed_text() -> None:
        try:
            async for delta in iterate_node(text):
                for ch in text_chs:
                    ch.send_nowait(delta)
        finally:
            for ch in text_chs:
                ch.close()

    tasks: list[asyncio.Task[Any]] = [asyncio.create_task(feed_text())]
    frames: AsyncIterable[rtc.AudioFrame] | None = None
    tts_task: asyncio.Task[None] | None = None
    tts_data: TTSGenerationData | None = None
    if audio_out is not None and audio is not None:
        frames = audio
    elif use_tts:
        tts_task, tts_data = perform_tts_inference(
            activity.agent.tts_node, text_chs[1], ModelSettings()
        )
        frames = tts_data.audio_ch
        tasks.append(tts_task)
    try:
        await handle.wait_if_not_interrupted([handle._authorized])
        spoken = await speak(
            activity,
            handle,
            text_chs[0],
            frames,
            audio_out if frames is not None else None,
            tts_task,
            tts_data,
        )
    finally:
        await cancel_and_wait(*tasks)
    if add_to_chat_ctx and spoken.text:
        add_assistant_message(activity, handle, spoken, tts_data=tts_data)
