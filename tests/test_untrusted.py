"""Hostile text — escape sequences, C0/C1 controls, Rich markup, secrets — from a model, a tool,
a server error, a log record or a recording file never reaches the terminal or a file as is:
every renderer is fuzzed (conversation, tools, logs, headless, ``--json``, show, ``show --text``,
the replay diff, ``transcript.md``)."""

from __future__ import annotations

import io
import json
import logging
import random
import re
import stat
import threading
from pathlib import Path
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from tests import fake_runtime as fr
from tests.fake_runtime import FakeRuntime, settle
from voicetui.agents import Agent, AgentSession, function_tool
from voicetui.agents.llm import ChatMessage
from voicetui.agents.testing import FakeLLM, FakeLLMResponse, FakeToolCall
from voicetui.agents.voice.events import ConversationItemAddedEvent, ErrorEvent
from voicetui.config import Settings
from voicetui.headless import _Printer, run_headless
from voicetui.plugins.selection import SessionModels
from voicetui.recording import Recorder, load_recording
from voicetui.recording.diff import diff, format_recording
from voicetui.runtime._io_modes import build_backend
from voicetui.runtime._loop import LoopRuntime
from voicetui.runtime.api import CommandError, Notice, RoomDetails
from voicetui.runtime.controller import SessionController
from voicetui.runtime.log_capture import SanitizingFormatter
from voicetui.runtime.recording_view import RecordingRuntime
from voicetui.tui.app import VoiceTUIApp
from voicetui.untrusted import clean_text, is_clean

OSC52 = "\x1b]52;c;cHduZWQ=\x1b\\"
TITLE = "\x1b]0;PWNED\x07"
FRAGMENTS = [
    OSC52,
    TITLE,
    "\x1b[2J",
    "\x1b[31m",
    "\x9b31m",
    "\x9d0;t\x9c",
    "\x1bP1;2|x\x1b\\",
    "\x1b",
    "\x07",
    "\x00",
    "\r",
    "\x7f",
    "\x85",
    "[/]",
    "[bold red]",
    "[link=http://x]",
    "\\[",
    "\n",
    "\t",
    "héllo",
    "🙂",
    "word",
]
KEY = "sk-test-0123456789abcdefXYZ"
# a control character anywhere but newline and tab: what must never come out
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")

hostile = st.lists(
    st.one_of(
        st.sampled_from(FRAGMENTS),
        st.binary(max_size=12).map(lambda b: b.decode("latin-1")),
        st.text(max_size=12),
    ),
    max_size=12,
).map("".join)


def corpus(n: int, seed: int = 16) -> list[str]:
    """``n`` hostile strings (deterministic): for the renderers that run in an app."""
    rnd = random.Random(seed)
    out = []
    for _ in range(n):
        parts = []
        for _ in range(rnd.randint(1, 10)):
            if rnd.random() < 0.7:
                parts.append(rnd.choice(FRAGMENTS))
            else:
                parts.append(bytes(rnd.randrange(256) for _ in range(6)).decode("latin-1"))
        out.append("".join(parts))
    return out


def assert_clean(text: str) -> None:
    found = CONTROL.search(text)
    assert found is None, f"control {found.group()!r} in {text!r}"


# --- the helper itself -----------------------------------------------------------------------


def test_clean_text_removes_sequences_whole() -> None:
    assert clean_text(f"Hi{OSC52} there{TITLE}!") == "Hi there!"
    assert clean_text("\x1b[1;31mred\x1b[0m \x9b2Jx") == "red x"
    assert clean_text("a\r\nb\rc\x00d\te\n") == "a\nbcd\te\n"
    assert clean_text("plain [b]markup[/b] stays") == "plain [b]markup[/b] stays"


@settings(max_examples=300, deadline=None)
@given(hostile)
def test_clean_text_leaves_no_control(text: str) -> None:
    cleaned = clean_text(text)
    assert is_clean(cleaned)
    assert clean_text(cleaned) == cleaned


# --- the runtime boundary: headless lines, --json, logs ----------------------------------------


def _events(text: str) -> list[Any]:
    call = fr.call("lookup", "c1", query=text)
    return [
        ConversationItemAddedEvent(item=ChatMessage(role="assistant", content=[text])),
        ConversationItemAddedEvent(item=ChatMessage(role="user", content=[text])),
        fr.tools_executed(fr.execution(call, text, 0.01, exception=text)),
        ErrorEvent(source="llm", message=text, recoverable=False),
        Notice(level="error", message=text),
        fr.log(logging.ERROR, text, "x"),
    ]


@settings(max_examples=150, deadline=None)
@given(hostile)
@example("\n{")  # a text whose second line could pass for a --json line
def test_headless_and_json_output_carry_no_control(text: str) -> None:
    runtime = LoopRuntime(secrets=[KEY])
    out, err = io.StringIO(), io.StringIO()
    lines, js = _Printer(out, err, False), _Printer(out, err, True)
    runtime.subscribe(lines.show)
    runtime.subscribe(js.show)
    for ev in _events(text + KEY):
        runtime._emit(ev)
    assert_clean(out.getvalue())
    assert_clean(err.getvalue())
    assert KEY not in out.getvalue() + err.getvalue()
    for line in out.getvalue().splitlines():
        if line.startswith("{"):  # --json: the decoded strings are clean too
            assert_clean(str(json.loads(line)))


def test_log_lines_on_stderr_are_sanitised() -> None:
    runtime = LoopRuntime(secrets=[KEY])
    fmt = SanitizingFormatter(runtime.sanitizer.text, "%(message)s")
    record = logging.LogRecord("x", logging.ERROR, "f", 1, f"boom{OSC52} {KEY}", None, None)
    assert fmt.format(record) == "boom ***"


def test_a_live_session_masks_and_cleans_what_models_and_tools_send() -> None:
    """An LLM reply with OSC 52 and a title; a tool whose exception carries the API key in a
    Bearer header (a server echoing it): neither reaches headless output."""

    class Leaky(Agent):
        def __init__(self) -> None:
            super().__init__(instructions="x")

        @function_tool
        async def fetch(self) -> str:
            """Fetch."""
            raise RuntimeError(f"401: Authorization: Bearer {KEY}\x1b]0;t\x07")

    llm = FakeLLM(
        [
            FakeLLMResponse(input="hi", content=f"Hello{OSC52} you{TITLE}"),
            FakeLLMResponse(input="fetch", tool_calls=[FakeToolCall("fetch", {})]),
            FakeLLMResponse(content=f"the key is {KEY}"),
        ]
    )
    settings_ = Settings(mode="text")
    settings_.models.openai_api_key = KEY
    controller = SessionController(
        settings_, agent=Leaky(), models=SessionModels(stt=None, vad=None, llm=llm, tts=None)
    )
    out, err = io.StringIO(), io.StringIO()
    code = run_headless(
        controller, json_output=True, out=out, err=err, stdin=io.StringIO("hi\nfetch\n"), settle=0.3
    )
    assert code == 0, err.getvalue()
    text = out.getvalue() + err.getvalue()
    assert_clean(text)
    assert KEY not in text
    decoded = [json.loads(line) for line in out.getvalue().splitlines()]
    assert_clean(str(decoded))
    said = [
        e["item"]["content"]
        for e in decoded
        if e["type"] == "conversation_item_added" and e["item"]["type"] == "message"
    ]
    assert ["Hello you"] in said and ["the key is ***"] in said
    (tools,) = [e for e in decoded if e["type"] == "function_tools_executed"]
    assert "Bearer ***" in tools["executions"][0]["exception"]


# --- recordings: transcript.md, events.jsonl, show --text, diff, the show runtime --------------


async def test_recording_files_carry_no_control(tmp_path: Path) -> None:
    rec = Recorder(tmp_path, session=AgentSession())
    await rec.start()
    texts = corpus(60)
    for text in texts:
        for ev in _events(text):
            rec.record_event(ev)
    await rec.stop()
    assert rec.directory is not None
    for name in ("transcript.md", "events.jsonl"):
        assert_clean((rec.directory / name).read_text())
    for line in (rec.directory / "events.jsonl").read_text().splitlines():
        assert_clean(str(json.loads(line)))


def _crafted_recording(directory: Path, texts: list[str]) -> Path:
    """What an attacker hands over: control characters in every text field (escaped in the
    JSON, as a JSON parser reads them: raw ones make the line invalid)."""
    directory.mkdir()
    lines = []
    for i, text in enumerate(texts):
        call = {"call_id": f"c{i}", "name": text, "arguments": json.dumps({"q": text})}
        for type_, event in (
            ("conversation_item_added", {"item": {"type": "message", "role": "user", "content": [text]}}),
            ("conversation_item_added", {"item": {"type": "message", "role": "assistant", "content": [text], "interrupted": False}}),
            ("function_tools_executed", {"executions": [{"call": call, "output": {"call_id": f"c{i}", "output": text, "is_error": True}, "duration": 0.1, "exception": text}], "speech_id": "s"}),
            ("notice", {"level": "warning", "message": text}),
            ("error", {"source": text, "message": text, "recoverable": False}),
        ):  # fmt: skip
            lines.append(json.dumps({"t": i, "wall": fr.T0 + i, "type": type_, "event": event}))
    (directory / "events.jsonl").write_text("\n".join(lines) + "\n")
    (directory / "session.json").write_text(
        json.dumps({"sample_rate": 16000, "agent": {"label": texts[0], "instructions": texts[1]}})
    )
    (directory / "transcript.md").write_text(
        "\n".join(f"- `00:01.00` **User:** {t}" for t in texts)
    )
    return directory


def test_show_text_and_the_replay_diff_carry_no_control(tmp_path: Path) -> None:
    texts = corpus(80)
    rec = load_recording(_crafted_recording(tmp_path / "rec", texts))
    assert len(rec.events) == 5 * len(texts)
    assert_clean(format_recording(rec))
    assert_clean(diff(rec, rec))


def test_show_runtime_sends_no_control(tmp_path: Path) -> None:
    view = RecordingRuntime(_crafted_recording(tmp_path / "rec", corpus(40)))
    got: list[Any] = []
    view.subscribe(got.append)
    view.start().result(timeout=30)
    view.join(timeout=5)
    assert len(got) > 40
    for ev in got:
        assert_clean(repr(ev))


# --- the TUI: conversation, tools, logs, notifications ---------------------------------------


async def test_tui_renders_no_control_and_markup_never_crashes() -> None:
    """Events straight from a runtime that does not clean them (the fake): the bridge does."""
    rt = FakeRuntime()
    app = VoiceTUIApp(rt, clock=lambda: fr.T0 + 65, bridge_interval=0)
    texts = [*corpus(40), "[/]", "error [bold]x[/] y", "[link=x]", "rec[/]odd"]
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        for text in texts:
            rt.emit(*_events(text))
        rt.fail["interrupt"] = RuntimeError("server said [/] no")
        await pilot.press("f4")
        await settle(pilot, 5)
        for tab in ("conversation-tab", "tools-tab", "logs-tab"):
            app.show_tab(tab)
            await settle(pilot)
            assert_clean(fr.screen_text(app))
        notes = [n.message for n in fr.notifications(app)]
        assert any("[/]" in n for n in notes)  # shown as text, not parsed
        assert all(is_clean(n) for n in notes)
    assert app.return_code in (None, 0)


async def test_a_markup_theme_name_is_a_warning_not_a_crash() -> None:
    app = VoiceTUIApp(FakeRuntime(), theme="[/]", clock=lambda: fr.T0, bridge_interval=0)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        assert any("[/]" in n.message for n in fr.notifications(app))
    assert app.return_code in (None, 0)


# --- secrets outside recordings: transcript export, URL credentials, paths ---------------------


def test_transcript_export_is_masked_clean_and_owner_only(tmp_path: Path) -> None:
    llm = FakeLLM([FakeLLMResponse(input="hi", content=f"Your key is {KEY}{TITLE}.")])
    settings_ = Settings(mode="text")
    settings_.models.openai_api_key = KEY
    controller = SessionController(
        settings_,
        agent=Agent(instructions="x"),
        models=SessionModels(stt=None, vad=None, llm=llm, tts=None),
    )
    replied = threading.Event()
    controller.subscribe(
        lambda ev: (
            replied.set() if getattr(getattr(ev, "item", None), "role", "") == "assistant" else None
        )
    )
    try:
        controller.start().result(30)
        controller.send_text("hi").result(30)
        assert replied.wait(30)
        for name in ("t.md", "t.json"):
            target = tmp_path / name
            target.write_text("old")
            target.chmod(0o644)
            controller.export_transcript(str(target)).result(30)
            text = target.read_text()
            assert KEY not in text and "Your key is ***" in text
            assert_clean(text if name == "t.md" else str(json.loads(text)))
            assert stat.S_IMODE(target.stat().st_mode) == 0o600
    finally:
        controller.stop().result(30)


async def test_url_credentials_are_masked_in_session_json(tmp_path: Path) -> None:
    url = "wss://bob:pa55w0rd-x@livekit.example.com/room"
    rec = Recorder(tmp_path, session=AgentSession(), metadata={"room": {"url": url}})
    await rec.start()
    await rec.stop()
    assert rec.directory is not None
    info = (rec.directory / "session.json").read_text()
    assert "pa55w0rd-x" not in info and "wss://bob:***@livekit.example.com/room" in info


def test_the_current_folder_is_not_a_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    """``PWD`` matches the secret-name pattern ("pwd"): its value is a path, not a password."""
    here = str(Path.cwd())
    monkeypatch.setenv("PWD", here)
    monkeypatch.setenv("DB_PASSWORD", "hunter2-hunter2")
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", here)
    runtime = LoopRuntime()
    assert runtime.sanitizer.text(f"saved to {here}/x.md") == f"saved to {here}/x.md"
    assert runtime.sanitizer.text("pw hunter2-hunter2") == "pw ***"


def test_room_credentials_typed_in_the_app_are_masked() -> None:
    token = "typed-room-token-0123456789"

    async def refuse(request: Any, hooks: Any) -> Any:
        if request.mode == "room":
            raise ValueError(f"server rejected {request.room.token}")
        return await build_backend(request, hooks)

    controller = SessionController(
        Settings(mode="text"),
        agent=Agent(instructions="x"),
        models=SessionModels(stt=None, vad=None, llm=FakeLLM(default="x"), tts=None),
        backend_factory=refuse,
    )
    notices: list[str] = []
    controller.subscribe(lambda ev: notices.append(ev.message) if ev.type == "notice" else None)
    try:
        controller.start().result(30)
        room = RoomDetails("wss://lk.example", "r", token=token)
        with pytest.raises(CommandError) as caught:
            controller.switch_mode("room", room).result(30)
        assert token not in str(caught.value) and "server rejected ***" in str(caught.value)
        assert notices and not any(token in n for n in notices)
    finally:
        controller.stop().result(30)


def test_a_recording_folder_name_with_controls_is_shown_clean(tmp_path: Path) -> None:
    view = RecordingRuntime(_crafted_recording(tmp_path / f"rec{TITLE}x", ["a", "b"]))
    assert view.name == "recx" and is_clean(view.title)
