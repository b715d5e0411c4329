"""RoomIO against a real LiveKit server: an agent and a test user join the same (fresh) room; the
user's microphone (espeak-ng speech, or a tone) reaches the session's audio input, the agent's
voice and transcription reach the user, and a chat message gets a reply. Runs only when
LIVEKIT_URL, LIVEKIT_API_KEY and LIVEKIT_API_SECRET are set; the room is deleted at the end."""

from __future__ import annotations

import asyncio
import os
import uuid
from typing import Any

import numpy as np
import pytest
from livekit import rtc

from voicetui.agents import Agent, AgentSession
from voicetui.agents.audio import rms_dbfs
from voicetui.agents.testing import FakeLLM, FakeLLMResponse, FakeTTS
from voicetui.io.room import RoomIO, connect, mint_token, room_deleter

from .audio_fixtures import espeak_pcm, have_espeak
from .fake_room import frames_of, tone

ENV = ("LIVEKIT_URL", "LIVEKIT_API_KEY", "LIVEKIT_API_SECRET")
pytestmark = pytest.mark.skipif(
    not all(os.environ.get(v) for v in ENV),
    reason="needs a LiveKit server: set LIVEKIT_URL, LIVEKIT_API_KEY and LIVEKIT_API_SECRET",
)

LOUD = -35.0


async def until(pred: Any, within: float = 15.0, what: str = "condition") -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not pred():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


def user_speech(sample_rate: int) -> np.ndarray:
    if have_espeak():
        return espeak_pcm(
            "hello agent, can you hear me", sample_rate=sample_rate, silence_after=0.5
        )
    return tone(1.0, 440, sample_rate=sample_rate)


async def test_audio_text_and_chat_flow_both_ways() -> None:
    room_name = f"voicetui-test-{uuid.uuid4().hex[:8]}"
    agent_room = await connect(room_name=room_name, identity="voicetui-agent")
    user_token = mint_token(
        os.environ["LIVEKIT_API_KEY"],
        os.environ["LIVEKIT_API_SECRET"],
        room_name=room_name,
        identity="test-user",
        kind="standard",
    )
    user_room = await connect(token=user_token)
    session: AgentSession[None] = AgentSession(
        llm=FakeLLM([FakeLLMResponse(content="Loud and clear.", input="can you hear me?")]),
        tts=FakeTTS(seconds_per_char=0.03),
    )
    rio = RoomIO(session, agent_room, delete_room=room_deleter(room_name=room_name))
    heard_by_user: list[rtc.AudioFrame] = []
    transcripts: dict[str, list[str]] = {}
    tasks: list[asyncio.Task[Any]] = []

    def on_track(track: rtc.Track, pub: Any, participant: rtc.RemoteParticipant) -> None:
        if participant.identity == "voicetui-agent" and track.kind == rtc.TrackKind.KIND_AUDIO:

            async def listen() -> None:
                async for ev in rtc.AudioStream(track, sample_rate=24000):
                    heard_by_user.append(ev.frame)

            tasks.append(asyncio.create_task(listen()))

    def on_transcription(reader: rtc.TextStreamReader, identity: str) -> None:
        async def read() -> None:
            text = await reader.read_all()
            transcripts.setdefault(identity, []).append(text)

        tasks.append(asyncio.create_task(read()))

    user_room.on("track_subscribed", on_track)
    user_room.register_text_stream_handler("lk.transcription", on_transcription)
    try:
        await rio.start()
        participant = await asyncio.wait_for(rio.wait_for_participant(), 15)
        assert participant.identity == "test-user"

        # user -> agent: the session's input (read here before the session starts) gets it
        source = rtc.AudioSource(48000, 1)
        track = rtc.LocalAudioTrack.create_audio_track("mic", source)
        opts = rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE)
        await user_room.local_participant.publish_track(track, opts)
        received: list[rtc.AudioFrame] = []
        inp = rio.audio_input
        assert inp is not None

        async def read_input() -> None:
            async for f in inp:
                received.append(f)

        reader = asyncio.create_task(read_input())
        await until(lambda: inp.publication_sid is not None, what="the user's track")
        for f in frames_of(user_speech(48000), 48000):
            await source.capture_frame(f)
        await until(
            lambda: sum(f.duration for f in received if rms_dbfs(f) > LOUD) > 0.5,
            what="the user's voice at the agent",
        )
        assert {f.sample_rate for f in received} == {24000}
        reader.cancel()
        await asyncio.gather(reader, return_exceptions=True)
        inp.on_detached()

        # agent -> user: voice and synchronized transcription
        await session.start(Agent(instructions="x"))
        await session.say("Hello from the agent.")
        await until(
            lambda: sum(f.duration for f in heard_by_user if rms_dbfs(f) > LOUD) > 0.4,
            what="the agent's voice at the user",
        )
        await until(
            lambda: "Hello from the agent." in transcripts.get("voicetui-agent", []),
            what="the agent's transcription",
        )

        # chat -> reply
        await user_room.local_participant.send_text("can you hear me?", topic="lk.chat")
        await until(
            lambda: "Loud and clear." in transcripts.get("voicetui-agent", []),
            what="the reply to the chat message",
        )
        assert [m.text_content for m in session.history.messages()][-2:] == [
            "can you hear me?",
            "Loud and clear.",
        ]
        await source.aclose()
    finally:
        await session.aclose()  # deletes the room (delete_room_on_close)
        await rio.aclose()
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await user_room.disconnect()
        await agent_room.disconnect()
