"""``voicetui show DIR``: a recording opened in the TUI, read-only (RecordingRuntime + the app's
read-only mode), including recordings a crash left behind, and its SVG snapshot."""

from __future__ import annotations

import asyncio
import json
import re
import threading
import time
from collections.abc import AsyncIterator
from concurrent.futures import Future
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import looptime
import pytest
from textual.pilot import Pilot
from textual.widgets import Input

from tests import fake_runtime as fr
from tests.fake_runtime import settle
from tests.test_recording import WeatherAgent
from tests.test_recording_replay import record_original
from tests.test_tui_snapshots import SnapCompare, long_session
from voicetui.agents.testing import FakeLLM, FakeLLMResponse, FakeToolCall
from voicetui.agents.voice.events import ConversationItemAddedEvent, FunctionToolsExecutedEvent
from voicetui.config import Settings
from voicetui.plugins.selection import SessionModels
from voicetui.recording.load import load_recording
from voicetui.recording.session_info import to_jsonable
from voicetui.recording.wav_writer import wav_header
from voicetui.runtime.api import ModeChanged, Notice, RuntimeStatus
from voicetui.runtime.controller import SessionController
from voicetui.runtime.recording_view import READ_ONLY_MESSAGE, ReadOnlyError, RecordingRuntime
from voicetui.tui.app import VoiceTUIApp
from voicetui.tui.widgets.conversation import ConversationView
from voicetui.tui.widgets.logs import LogsPanel
from voicetui.tui.widgets.state import StatePanel

COMMANDS = (
    "send_text",
    "say",
    "interrupt",
    "set_mic_muted",
    "push_to_talk",
    "cancel_push_to_talk",
    "switch_mode",
    "list_devices",
    "select_devices",
    "set_break_on_tool_call",
    "resolve_tool_break",
    "rerun_tool",
    "start_recording",
    "stop_recording",
    "export_transcript",
)


class SpyView(RecordingRuntime):
    """A RecordingRuntime that notes every command the app sends it."""

    def __init__(self, directory: str | Path, **kw: Any) -> None:
        super().__init__(directory, **kw)
        self.calls: list[str] = []


def _spy(name: str) -> Any:
    original = getattr(RecordingRuntime, name)

    def method(self: SpyView, *args: Any, **kw: Any) -> Future[Any]:
        self.calls.append(name)
        result: Future[Any] = original(self, *args, **kw)
        return result

    return method


for _name in COMMANDS:
    setattr(SpyView, _name, _spy(_name))


# --- recordings ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def voice_recording(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Spoken turns with tool calls, recorded with the framework's fakes on virtual time."""
    loop = looptime.new_event_loop(start=0.0)
    try:
        return loop.run_until_complete(record_original(tmp_path_factory.mktemp("voice")))
    finally:
        loop.close()


@pytest.fixture(scope="module")
def text_recording(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Typed turns through the real runtime (its status, mode and notices are recorded)."""
    llm = FakeLLM(
        [
            FakeLLMResponse(
                input="weather in paris",
                tool_calls=[FakeToolCall("get_weather", {"city": "Paris"})],
            ),
            FakeLLMResponse(content="It is sunny in Paris."),
        ],
        default="Noon.",
    )
    controller = SessionController(
        Settings(mode="text"),  # type: ignore[arg-type]
        agent=WeatherAgent(),
        models=SessionModels(stt=None, vad=None, llm=llm, tts=None),
    )
    replied = threading.Event()

    def on_event(ev: Any) -> None:
        if ev.type == "conversation_item_added" and getattr(ev.item, "role", "") == "assistant":
            replied.set()

    controller.subscribe(on_event)
    controller.start().result(30)
    directory = controller.start_recording(str(tmp_path_factory.mktemp("text"))).result(30)
    for text in ("weather in paris", "what time is it"):
        replied.clear()
        controller.send_text(text).result(30)
        assert replied.wait(30)
    controller.stop_recording().result(30)
    controller.stop().result(30)
    controller.join(10)
    return Path(directory)


def write_recording(directory: Path, events: list[Any], *, finished: bool = True) -> Path:
    """A recording's files with fixed times and names (for the snapshot)."""
    directory.mkdir(parents=True)
    info = {
        "format": "voicetui-recording/1",
        "id": directory.name,
        "started_wall": fr.T0,
        "sample_rate": 24000,
        "agent": {"label": "Assistant", "class": "demo.Assistant", "tools": ["get_time"]},
        "metadata": {"agent": "Assistant", "models": "STT whisper, LLM qwen, TTS piper"},
    }
    (directory / "session.json").write_text(json.dumps(info))
    lines = [{"t": 0.0, "wall": fr.T0, "type": "recording_started", "event": {}}]
    for i, ev in enumerate(events, 1):
        lines.append(
            {"t": i * 0.5, "wall": fr.T0 + i * 0.5, "type": ev.type, "event": to_jsonable(ev)}
        )
    if finished:
        t = len(events) * 0.5 + 0.5
        lines.append(
            {"t": t, "wall": fr.T0 + t, "type": "recording_stopped", "event": {"duration": t}}
        )
    (directory / "events.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    for name, channels in (("audio.wav", 2), ("user.wav", 1), ("agent.wav", 1)):
        (directory / name).write_bytes(
            wav_header(sample_rate=24000, channels=channels, data_bytes=0)
        )
    (directory / "transcript.md").write_text("# demo\n")
    return directory


def demo_events() -> list[Any]:
    """The snapshot session, recorded while recording (the viewer must not show REC)."""
    return [
        fr.status(recording_dir="/tmp/rec", recording_since=fr.T0),
        *[e for e in long_session() if e.type != "levels"],
    ]


# --- the app on a recording ---------------------------------------------------------------------
@asynccontextmanager
async def showing(
    view: RecordingRuntime, size: tuple[int, int] = (120, 40)
) -> AsyncIterator[tuple[VoiceTUIApp, Pilot[int]]]:
    app = VoiceTUIApp(view, clock=lambda: fr.T0 + 65, bridge_interval=0, title=view.title)
    async with app.run_test(size=size) as pilot:
        await asyncio.wrap_future(view.start())  # (the app started it: the same future)
        await settle(pilot, 5)
        yield app, pilot
    view.stop()
    view.join(5)


def lines(app: VoiceTUIApp) -> list[str]:
    return [" ".join(line.split()) for line in app.query_one(ConversationView).plain_lines()]


def toasts(app: VoiceTUIApp) -> list[tuple[str, str]]:
    return [(str(n.title), str(n.message)) for n in fr.notifications(app)]


async def test_a_voice_recording_opens_read_only(voice_recording: Path) -> None:
    view = SpyView(voice_recording)
    async with showing(view) as (app, pilot):
        assert app.read_only
        text = lines(app)
        assert text[:4] == [
            "⇄ agent weather_agent",  # the first agent is announced
            "You weather in paris",
            '➜ get_weather(city="Paris") ✓ 200 ms',
            "Agent It is sunny in Paris.",
        ]
        assert "You thanks" in text and "Agent You are welcome." in text
        assert not any("incomplete" in line for line in text)
        # header: the recording, its agent, not recording now
        assert app.header.app_title.startswith(f"RECORDING {voice_recording.name} · ")
        assert app.header.agent_name == "WeatherAgent"
        assert "fake-llm" in app.header.models and app.header.recording_since is None
        # tools: every call with its arguments and output, selectable
        records = list(app.tools_panel.records.values())
        assert [(r.call.name, json.loads(r.call.arguments), r.output) for r in records] == [
            ("get_weather", {"city": "Paris"}, "sunny in Paris"),
            ("get_weather", {"city": "Rome"}, "sunny in Rome"),
        ]
        # latency: a row per turn with its end-to-end latency
        rows = app.latency_panel.book.rows
        assert len(rows) == 3 and all(r.e2e is not None for r in rows)
        # the state at the end
        panel = app.query_one("#state", StatePanel)
        assert panel.agent_state == "listening" and panel.tools_running == 0
        screen = fr.screen_text(app)
        assert "Next tab" in screen and "Mute" not in screen[-130:]
        # no live-only rows in the sidebar: meters, mute, push-to-talk, break
        labels = {line[:8].strip() for line in panel.render().plain.splitlines()}
        assert labels == {"Agent", "User", "", "Last e2e"}
        compact = app.query_one("#compact-state", StatePanel).render().plain
        assert "agent " in compact and "mic" not in compact

        # every command key: one clear message, nothing reaches the runtime
        for key in ("f2", "f3", "f4", "f5", "f6", "f7", "f8", "ctrl+s", "x"):
            await pilot.press(key)
        app.show_tab("tools-tab")
        await pilot.press("ctrl+r")
        await settle(pilot)
        said = toasts(app)
        assert {m for _, m in said} == {READ_ONLY_MESSAGE}
        assert {t for t, _ in said} >= {"Mute", "Interrupt", "Record", "Typing", "Re-run tool"}
        assert view.calls == []
        assert len(app.screen_stack) == 1  # no device picker, no prompt
        talk = app.query_one("#talk", Input)
        assert talk.disabled and talk.value == ""
        await pilot.press("ctrl+n")  # the view's keys work
        assert app.tabs.active == "latency-tab"


async def test_a_recording_of_the_runtime_shows_typed_turns_and_its_notices(
    text_recording: Path,
) -> None:
    # wide: the notice holds the recording's path, longer under pytest-xdist (…/popen-gw0/…),
    # and a wrapped line would split it
    async with showing(SpyView(text_recording), size=(200, 40)) as (app, pilot):
        text = lines(app)
        assert text[0] == f"ℹ recording to {text_recording}"  # what happened, as it happened
        assert text[1] == "You weather in paris"
        # the call's real time: the tool sleeps 0.2 s (more on a loaded machine)
        call = re.fullmatch(r'➜ get_weather\(city="Paris"\) ✓ (\d+) ms', text[2])
        assert call and int(call[1]) >= 200, text[2]
        assert text[3:] == ["Agent It is sunny in Paris.", "You what time is it", "Agent Noon."]
        assert app.header.mode_description == "TEXT"
        assert app.header.recording_since is None and app.recording_dir is None
        assert toasts(app) == []  # history raises no pop-ups
        assert any("recording" in r.message for r in app.query_one(LogsPanel).records)
        assert app.latency_panel.book.rows  # typed turns get rows too (LLM TTFT)


async def test_a_recording_cut_short_opens_with_a_notice(
    text_recording: Path, tmp_path: Path
) -> None:
    import shutil

    copy = Path(shutil.copytree(text_recording, tmp_path / text_recording.name))
    events = copy / "events.jsonl"
    data = events.read_bytes()
    events.write_bytes(data[: len(data) - 40])  # the last line (recording_stopped) torn
    (copy / "session.json").unlink()
    async with showing(SpyView(copy)) as (app, pilot):
        text = lines(app)
        assert "You weather in paris" in text and "Agent Noon." in text
        problems = [line for line in text if line.startswith("! incomplete recording:")]
        joined = " ".join(problems)
        assert "(the last) was cut off" in joined
        assert "did not finish" in joined
        assert "session.json could not be read" in joined
        assert app.header.agent_name == "WeatherAgent"  # the recorded status still says it


def test_snapshot_show(
    snap_compare: SnapCompare, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    directory = write_recording(tmp_path / "20231114-221320-demo01", demo_events())
    view = RecordingRuntime(directory)
    app = VoiceTUIApp(view, clock=lambda: fr.T0 + 125, bridge_interval=0, title=view.title)

    async def run_before(pilot: Pilot[Any]) -> None:
        await asyncio.wrap_future(view.start())
        await settle(pilot, 5)

    try:
        assert snap_compare(app, terminal_size=(120, 40), run_before=run_before)
    finally:
        view.stop()
        monkeypatch.undo()
        time.tzset()


# --- the runtime alone --------------------------------------------------------------------------
def collect(view: RecordingRuntime) -> list[Any]:
    got: list[Any] = []
    view.subscribe(got.append)
    view.start().result(10)
    view.join(5)
    return got


def test_events_come_back_as_the_runtime_sent_them(voice_recording: Path) -> None:
    got = collect(RecordingRuntime(voice_recording))
    assert isinstance(got[0], ModeChanged) and isinstance(got[1], RuntimeStatus)
    items = [e.item for e in got if isinstance(e, ConversationItemAddedEvent)]
    assert items[0].type == "agent_handoff" and items[0].old_agent_id is None
    assert [i.role for i in items[1:]] == ["user", "assistant"] * 3  # type: ignore[union-attr]
    executed = [e for e in got if isinstance(e, FunctionToolsExecutedEvent)]
    assert [e.executions[0].call.name for e in executed] == ["get_weather", "get_weather"]
    assert not [e for e in got if isinstance(e, Notice)]


def test_until_shows_the_start_and_commands_are_refused(voice_recording: Path) -> None:
    first_reply = load_recording(voice_recording).turns[0].replies[0].t
    view = RecordingRuntime(voice_recording, until=first_reply)
    got = collect(view)
    users = [
        e.item.text_content
        for e in got
        if isinstance(e, ConversationItemAddedEvent) and e.item.type == "message"
    ]
    assert users == ["weather in paris", "It is sunny in Paris."]
    for name in COMMANDS:
        fut = getattr(view, name)(*(("x",) * _arity(name)))
        with pytest.raises(ReadOnlyError, match=READ_ONLY_MESSAGE):
            fut.result(0)


def _arity(name: str) -> int:
    return {
        "send_text": 1,
        "say": 1,
        "set_mic_muted": 1,
        "switch_mode": 1,
        "select_devices": 2,
        "set_break_on_tool_call": 1,
        "resolve_tool_break": 2,
        "rerun_tool": 2,
        "export_transcript": 1,
    }.get(name, 0)


def test_speed_paces_the_events_and_stop_ends_it(voice_recording: Path) -> None:
    view = RecordingRuntime(voice_recording, speed=0.001)  # 13 s would take hours
    got: list[Any] = []
    view.subscribe(got.append)
    view.start()
    deadline = time.monotonic() + 10
    while not got and time.monotonic() < deadline:
        time.sleep(0.01)
    view.stop().result(10)
    view.join(5)
    assert not view.running
    # at most the first agent's announcement (t = 0) came through, nothing said after it
    assert not any(
        isinstance(e, ConversationItemAddedEvent) and e.item.type == "message" for e in got
    )


def test_not_a_recording() -> None:
    with pytest.raises(FileNotFoundError, match="not a recording"):
        RecordingRuntime("/nonexistent/recording")


def test_a_killed_recording_then_repaired(text_recording: Path, tmp_path: Path) -> None:
    """What a kill -9 leaves (torn last line, WAV headers that undercount) is named, with the
    command that fixes it; after the repair only the missing end is left to say."""
    import shutil
    import struct

    from voicetui.recording.repair import repair

    copy = Path(shutil.copytree(text_recording, tmp_path / text_recording.name))
    data = (copy / "events.jsonl").read_bytes()
    (copy / "events.jsonl").write_bytes(data[:-25])
    with open(copy / "audio.wav", "r+b") as f:  # the header's sizes were never rewritten
        f.seek(40)
        f.write(struct.pack("<I", 0))
    view = RecordingRuntime(copy)
    got = collect(view)
    notices = [e.message for e in got if isinstance(e, Notice) and e.level == "warning"]
    assert len(notices) == len(view.problems) == 4
    assert all(n.startswith("incomplete recording: ") for n in notices)
    assert "events.jsonl line " in notices[0] and "cut off mid-write" in notices[0]
    assert "audio.wav: the header does not match" in notices[1]
    assert f"voicetui recording repair {copy}" in notices[2]
    assert "did not finish" in notices[3]
    assert any(isinstance(e, ConversationItemAddedEvent) for e in got)

    assert repair(copy)
    repaired = RecordingRuntime(copy)
    collect(repaired)
    assert len(repaired.problems) == 1 and "did not finish" in repaired.problems[0]


def test_a_recording_started_mid_session_names_the_devices_as_the_live_header(
    tmp_path: Path,
) -> None:
    from tests.test_runtime import Backends

    controller = SessionController(
        Settings(mode="local"),  # type: ignore[arg-type]
        agent=WeatherAgent(),
        models=SessionModels(stt=None, vad=None, llm=FakeLLM(default="Okay."), tts=None),
        backend_factory=Backends(),
    )
    controller.start().result(20)
    try:
        directory = controller.start_recording(str(tmp_path)).result(20)
        controller.stop_recording().result(20)
    finally:
        controller.stop().result(20)
        controller.join(20)
    got = collect(RecordingRuntime(Path(directory)))
    modes = [e for e in got if isinstance(e, ModeChanged)]
    assert modes[0].description == "LOCAL fake mic"  # not the I/O classes' names
