"""``--headless``: the conversation as lines or JSON, driven by a WAV file (espeak-ng speech) or
typed lines, exiting by itself after the reply to the last utterance; Ctrl-C closes cleanly."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
import wave
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import pytest
from livekit import rtc
from pydantic import Field

from tests.audio_fixtures import espeak_pcm, have_espeak
from voicetui.agents import Agent, function_tool
from voicetui.agents.llm import FunctionCall
from voicetui.agents.stt import STT, SpeechData, SpeechEvent, SpeechEventType, STTCapabilities
from voicetui.agents.stt.stream_adapter import StreamAdapter
from voicetui.agents.testing import FakeLLM, FakeLLMResponse, FakeToolCall, FakeTTS, FakeVAD
from voicetui.agents.types import APIConnectOptions
from voicetui.config import Settings
from voicetui.headless import event_json, run_headless
from voicetui.plugins.selection import SessionModels
from voicetui.runtime.api import Notice, ToolBreak
from voicetui.runtime.controller import SessionController


class ScriptedSTT(STT):
    """Hears the next transcript of the script in each utterance (real audio, no model)."""

    def __init__(self, transcripts: Sequence[str]) -> None:
        super().__init__(capabilities=STTCapabilities(streaming=False, interim_results=False))
        self.transcripts = list(transcripts)

    async def _recognize_impl(
        self, buffer: list[rtc.AudioFrame], *, language: str | None, conn_options: APIConnectOptions
    ) -> SpeechEvent:
        text = self.transcripts.pop(0) if self.transcripts else ""
        return SpeechEvent(SpeechEventType.FINAL_TRANSCRIPT, [SpeechData(text=text)])


class Weather(Agent):
    def __init__(self) -> None:
        super().__init__(instructions="You tell the weather.")

    @function_tool
    async def get_weather(self, city: Annotated[str, Field(description="a city")]) -> str:
        """Get the weather."""
        return f"sunny in {city}"


def write_wav(path: Path, pcm: np.ndarray, rate: int) -> Path:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.astype(np.int16).tobytes())
    return path


def json_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def conversation(events: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [
        (e["item"]["role"], " ".join(e["item"]["content"]))
        for e in events
        if e["type"] == "conversation_item_added" and e["item"]["type"] == "message"
    ]


@pytest.mark.skipif(not have_espeak(), reason="espeak-ng is not installed")
def test_wav_driven_json_run_exits_after_the_last_reply(tmp_path: Path) -> None:
    rate = 16000
    first = espeak_pcm("Hello there.", sample_rate=rate, silence_before=0.3, silence_after=2.5)
    second = espeak_pcm("What time is it?", sample_rate=rate, silence_before=0.0, silence_after=0.2)
    question = write_wav(tmp_path / "q.wav", np.concatenate([first, second]), rate)
    vad = FakeVAD()
    models = SessionModels(
        stt=StreamAdapter(stt=ScriptedSTT(["hello there", "what time is it"]), vad=vad),
        vad=vad,
        llm=FakeLLM(
            [
                FakeLLMResponse(input="hello there", content="Hi!"),
                FakeLLMResponse(input="what time is it", content="It is noon.", ttft=0.3),
            ]
        ),
        tts=FakeTTS(seconds_per_char=0.04),
    )
    settings = Settings(mode="wav", input_wav=str(question), output_wav=str(tmp_path / "a.wav"))
    controller = SessionController(settings, agent=Agent(instructions="Hi."), models=models)
    out, err = io.StringIO(), io.StringIO()
    started = time.monotonic()
    code = run_headless(controller, json_output=True, out=out, err=err, reply_timeout=20)
    elapsed = time.monotonic() - started
    assert code == 0, err.getvalue()
    events = json_lines(out.getvalue())
    assert conversation(events) == [
        ("user", "hello there"),
        ("assistant", "Hi!"),
        ("user", "what time is it"),
        ("assistant", "It is noon."),
    ]
    types = [e["type"] for e in events]
    assert types[0] == "status" and "mode_changed" in types and "metrics_collected" in types
    assert "levels" not in types and "agent_transcript" not in types
    mode = next(e for e in events if e["type"] == "mode_changed")
    assert mode == {"mode": "wav", "description": "WAV q.wav → a.wav", "type": "mode_changed"}
    assert any(e["type"] == "notice" and "played to its end" in e["message"] for e in events)
    audio_len = len(first) / rate + len(second) / rate
    assert audio_len < elapsed < audio_len + 8
    with wave.open(str(tmp_path / "a.wav"), "rb") as w:
        assert w.getnframes() / w.getframerate() > 0.5  # both replies were spoken
    assert not controller.running


def test_typed_lines_as_text(tmp_path: Path) -> None:
    llm = FakeLLM(
        [
            FakeLLMResponse(input="hello", content="Hi!"),
            FakeLLMResponse(
                input="weather in Paris?",
                tool_calls=[FakeToolCall("get_weather", {"city": "Paris"})],
            ),
            FakeLLMResponse(content="It is sunny in Paris.", ttft=0.2),
        ]
    )
    controller = SessionController(
        Settings(mode="text"),
        agent=Weather(),
        models=SessionModels(stt=None, vad=None, llm=llm, tts=None),
    )
    out, err = io.StringIO(), io.StringIO()
    stdin = io.StringIO("hello\n\nweather in Paris?\n")
    assert run_headless(controller, out=out, err=err, stdin=stdin, settle=0.3) == 0
    assert out.getvalue().splitlines() == [
        "handoff: (start) → weather",
        "user: hello",
        "agent: Hi!",
        "user: weather in Paris?",
        'tool: get_weather(city="Paris") → sunny in Paris',
        "agent: It is sunny in Paris.",
    ]
    assert "voicetui: mode TEXT" in err.getvalue()


def test_no_reply_gives_up_with_exit_1() -> None:
    llm = FakeLLM([FakeLLMResponse(input="hello", content="late", ttft=60)])
    controller = SessionController(
        Settings(mode="text"),
        agent=Agent(instructions="Hi."),
        models=SessionModels(stt=None, vad=None, llm=llm, tts=None),
    )
    out, err = io.StringIO(), io.StringIO()
    code = run_headless(controller, out=out, err=err, stdin=io.StringIO("hello\n"), reply_timeout=1)
    assert code == 1
    assert "no reply within 1 s" in err.getvalue()
    assert not controller.running


def test_start_failure_exits_1(tmp_path: Path) -> None:
    settings = Settings(mode="wav", input_wav=str(tmp_path / "missing.wav"))
    controller = SessionController(
        settings,
        agent=Agent(instructions="Hi."),
        models=SessionModels(stt=None, vad=None, llm=FakeLLM(default="x"), tts=None),
    )
    out, err = io.StringIO(), io.StringIO()
    assert run_headless(controller, json_output=True, out=out, err=err) == 1
    assert "input WAV not found" in err.getvalue()
    assert json_lines(out.getvalue())[-1]["type"] == "fatal"


def test_runtime_events_as_json() -> None:
    call = FunctionCall(call_id="c1", name="get_weather", arguments='{"city": "Paris"}')
    data = json.loads(event_json(ToolBreak(break_id="b1", call=call)))
    assert data["type"] == "tool_break" and data["call"]["name"] == "get_weather"
    assert json.loads(event_json(Notice(level="info", message="hi"))) == {
        "level": "info",
        "message": "hi",
        "type": "notice",
    }


# `python -m voicetui` with Ctrl-C's default handling whatever this process inherited: a shell
# without job control starts `cmd &` with SIGINT ignored, Python keeps an ignored SIGINT ignored
# (as every program does), and a test suite started that way would see the signal do nothing
_WITH_CTRL_C = (
    "import runpy, signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
    "sys.argv[0] = 'voicetui'; runpy.run_module('voicetui', run_name='__main__', alter_sys=True)"
)


def test_ctrl_c_closes_cleanly(tmp_path: Path) -> None:
    env = {**os.environ, "VOICETUI_CONFIG": str(tmp_path / "none.toml")}
    proc = subprocess.Popen(
        [sys.executable, "-c", _WITH_CTRL_C, "--headless", "--mode", "text",
         "--stt", "none", "--llm", "none", "--tts", "none", "--vad", "none"],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )  # fmt: skip
    assert proc.stdin is not None and proc.stderr is not None
    try:
        line = proc.stderr.readline()  # the runtime is up
        assert "voicetui: mode TEXT" in line
        # stdin stays open until it has exited: its end (communicate() closes it) is another
        # way to close, which a loaded machine let win the race against the signal (exit 0);
        # stderr is read meanwhile (a full pipe would block its writes)
        rest: list[str] = []
        reader = threading.Thread(target=lambda: rest.append(proc.stderr.read()), daemon=True)
        reader.start()
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)
        reader.join(10)
        err = "".join(rest)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.stdin.close()
        proc.stderr.close()
    assert proc.returncode == 130
    assert "Traceback" not in err
