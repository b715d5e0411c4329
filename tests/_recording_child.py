"""A child process for the kill -9 tests: records a real-time session made of the framework's
fakes (a user who keeps talking, an agent who keeps answering) until it is killed.

Usage: python tests/_recording_child.py ROOT — prints the recording's folder once it started.
"""

from __future__ import annotations

import asyncio
import sys

from voicetui.agents import Agent, AgentSession
from voicetui.agents.testing import (
    FakeAudioInput,
    FakeAudioOutput,
    FakeLLM,
    FakeSTT,
    FakeTTS,
    FakeVAD,
    Utterance,
)
from voicetui.recording import Recorder


async def main(root: str) -> None:
    session: AgentSession[None] = AgentSession(
        vad=FakeVAD(),
        stt=FakeSTT(final_delay=0.1),
        llm=FakeLLM(default="Sure, here is an answer that goes on for a little while."),
        tts=FakeTTS(seconds_per_char=0.02, frame_duration=0.02),
        min_endpointing_delay=0.2,
        user_away_timeout=None,
    )
    mic = FakeAudioInput(
        [Utterance(0.6, silence_before=0.4, transcript=f"question {i}") for i in range(200)]
    )
    session.input.audio = mic
    session.output.audio = FakeAudioOutput()
    rec = Recorder(root, session=session, metadata={"child": True}, flush_interval=0.5)
    directory = await rec.start()
    rec.attach()
    await session.start(Agent(instructions="Answer."))
    print(directory, flush=True)
    await asyncio.sleep(3600)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
