"""Recordings written by earlier versions stay readable.

``tests/fixtures/recording_v1/`` holds recordings written before events were one typed union
(runtime events were dataclasses then, serialised by a generic walker): ``text`` by the real
runtime (typed turns, a tool call, its status, mode and notices), ``voice`` by the framework's
fakes on virtual time (spoken turns, metrics; its WAVs emptied to keep the fixture small), and
``runtime_events`` with one line of every other kind (plus a gap and a kind from the future).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from voicetui.recording.load import load_recording
from voicetui.runtime.recording_view import RecordingRuntime

FIXTURES = Path(__file__).parent / "fixtures" / "recording_v1"


def replayed(directory: Path) -> list[Any]:
    got: list[Any] = []
    view = RecordingRuntime(directory)
    view.subscribe(got.append)
    view.start().result(10)
    view.join(5)
    return got


def test_a_v1_text_recording_loads_as_turns() -> None:
    rec = load_recording(FIXTURES / "text")
    assert not rec.warnings
    assert [(t.user, t.typed, t.agent_text) for t in rec.user_turns] == [
        ("weather in paris", True, "It is sunny in Paris."),
        ("what time is it", True, "Noon."),
    ]
    [call] = rec.tool_calls
    assert (call.name, call.arguments, call.output) == (
        "get_weather",
        '{"city": "Paris"}',
        "sunny in Paris",
    )


def test_a_v1_voice_recording_loads_as_turns() -> None:
    rec = load_recording(FIXTURES / "voice")
    assert [t.user for t in rec.user_turns] == ["weather in paris", "and in rome", "thanks"]
    assert not any(t.typed for t in rec.user_turns)
    assert [t.agent_text for t in rec.user_turns] == [
        "It is sunny in Paris.",
        "Rome is sunny too.",
        "You are welcome.",
    ]
    assert rec.user_turns[0].latency.e2e == pytest.approx(1.2)
    assert [c.name for c in rec.tool_calls] == ["get_weather", "get_weather"]


@pytest.mark.parametrize("name", ["text", "voice", "runtime_events"])
def test_a_v1_recording_replays_every_line(name: str) -> None:
    got = replayed(FIXTURES / name)
    types = [ev.type for ev in got]
    assert types[:2] == ["mode_changed", "status"]
    notices = [ev.message for ev in got if ev.type == "notice"]
    assert not [n for n in notices if "could not be read" in n], notices


def test_v1_runtime_events_come_back_typed() -> None:
    got = replayed(FIXTURES / "runtime_events")
    by_type: dict[str, list[Any]] = {}
    for ev in got:
        by_type.setdefault(ev.type, []).append(ev)
    assert by_type["status"][0].agent_name == "Assistant"
    assert by_type["status"][0].recording_dir is None  # the viewer is not recording
    assert [(e.kind, e.stage) for e in by_type["model_loading"]] == [
        ("llm", "start"),
        ("llm", "ready"),
    ]
    [brk] = by_type["tool_break"]
    assert (brk.break_id, brk.call.name) == ("break_1", "get_time")
    [rerun] = by_type["tool_rerun"]
    assert rerun.execution.output.output == "12:00"
    [said] = by_type["agent_transcript"]
    assert (said.speech_id, said.text, said.final) == ("speech_1", "Hello there", True)
    assert by_type["reply_cut_off"][0].speech_id == "speech_2"
    assert by_type["agent_false_interruption"][0].resumed is True
    assert by_type["error"][0].message == "the LLM failed"
    assert by_type["close"][0].error == "boom"
    messages = [(e.level, e.message) for e in by_type["notice"]]
    assert ("warning", "the microphone went away") in messages
    assert any("were not recorded" in m for _, m in messages)  # the gap
    logs = [e.message for e in by_type["log"]]
    assert "speaker underrun" in logs
    assert any(m.startswith("some_future_event") for m in logs)
