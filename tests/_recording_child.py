"""Scripted pieces for recording tests that run in another process.

- ``python tests/_recording_child.py ROOT``: the kill -9 tests' child. It records a real-time
  session made of the framework's fakes (a user who keeps talking, an agent who keeps
  answering) until it is killed, and prints the recording's folder once it started.
- ``voicetui replay DIR --agent tests/_recording_child.py:ScriptedWeatherAgent --stt none
  --llm none --tts none --vad none``: :class:`ScriptedWeatherAgent` brings its own scripted
  models, so the CLI replays a recording without any real model.
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any

from livekit import rtc

from voicetui.agents import Agent, AgentSession, RunContext, function_tool
from voicetui.agents.audio import rms_dbfs
from voicetui.agents.stt import SpeechStream
from voicetui.agents.testing import (
    FakeAudioInput,
    FakeAudioOutput,
    FakeLLM,
    FakeLLMResponse,
    FakeSTT,
    FakeToolCall,
    FakeTTS,
    FakeVAD,
    Utterance,
)
from voicetui.agents.types import DEFAULT_API_CONNECT_OPTIONS, APIConnectOptions
from voicetui.recording import Recorder

SCRIPT = ["weather in paris", "and in rome", "thanks"]


class OrderedSTT(FakeSTT):
    """Audio from a WAV file has no transcripts attached: this STT gives each stretch of voice
    (by energy) the next transcript of a script, then works as FakeSTT."""

    def __init__(self, transcripts: list[str], **kw: Any) -> None:
        super().__init__(**kw)
        self.script = list(transcripts)
        self._in_voice = False
        self._current = ""

    def label_frame(self, frame: rtc.AudioFrame) -> None:
        if "transcript" in frame.userdata:  # buffered audio replayed to a new stream
            return
        if rms_dbfs(frame) > -40.0:
            if not self._in_voice:
                self._in_voice = True
                self._current = self.script.pop(0) if self.script else "???"
            frame.userdata["transcript"] = self._current
        else:
            self._in_voice = False

    def stream(
        self,
        *,
        language: str | None = None,
        conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS,
    ) -> SpeechStream:
        inner = super().stream(language=language, conn_options=conn_options)
        push = inner.push_frame

        def labelled(frame: rtc.AudioFrame) -> None:
            self.label_frame(frame)
            push(frame)

        inner.push_frame = labelled  # type: ignore[method-assign]
        return inner


def scripted_llm() -> FakeLLM:
    """The weather conversation of :data:`SCRIPT`: two tool calls, then a goodbye."""
    return FakeLLM(
        [
            FakeLLMResponse(
                input="weather in paris",
                tool_calls=[FakeToolCall("get_weather", {"city": "Paris"})],
                ttft=0.2,
            ),
            FakeLLMResponse(content="It is sunny in Paris.", ttft=0.2),
            FakeLLMResponse(
                input="and in rome",
                tool_calls=[FakeToolCall("get_weather", {"city": "Rome"})],
                ttft=0.2,
            ),
            FakeLLMResponse(content="Rome is sunny too.", ttft=0.2),
            FakeLLMResponse(input="thanks", content="You are welcome.", ttft=0.2),
        ]
    )


class ScriptedWeatherAgent(Agent):
    """The weather agent with its own scripted models (the CLI's session has none)."""

    def __init__(self) -> None:
        super().__init__(
            instructions="You report the weather.",
            vad=FakeVAD(),
            stt=OrderedSTT(SCRIPT, final_delay=0.2),
            llm=scripted_llm(),
            tts=FakeTTS(ttfb=0.1, frame_duration=0.02),
            user_away_timeout=None,
        )

    @function_tool
    async def get_weather(self, ctx: RunContext[None], city: str) -> str:
        """Current weather in a city."""
        await asyncio.sleep(0.2)
        return f"sunny in {city}"


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
