"""SVG snapshots of the main states at 120×40 and 80×24 (pytest-textual-snapshot).

Update after a deliberate UI change with ``pytest tests/test_tui_snapshots.py --snapshot-update``
and review the SVGs. Everything shown is deterministic: the clock is fixed, no timestamps."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import Button, TextArea

from tests import fake_runtime as fr
from tests.fake_runtime import FakeRuntime, settle
from voicetui.tui.app import VoiceTUIApp

SIZES = [pytest.param((120, 40), id="120x40"), pytest.param((80, 24), id="80x24")]
SnapCompare = Callable[..., bool]


def make_app(rt: FakeRuntime) -> VoiceTUIApp:
    return VoiceTUIApp(rt, clock=lambda: fr.T0 + 125, bridge_interval=0)


def emitting(
    rt: FakeRuntime, events: list[Any], then: str | None = None
) -> Callable[[Pilot[Any]], Awaitable[None]]:
    async def run_before(pilot: Pilot[Any]) -> None:
        await settle(pilot)
        rt.emit(*events)
        await settle(pilot)
        if then is not None:
            app = pilot.app
            assert isinstance(app, VoiceTUIApp)
            app.show_tab(then)
            await settle(pilot)

    return run_before


def long_session() -> list[Any]:
    events = fr.conversation_script()
    weather = fr.call("get_weather", "call_2", city="Paris", unit="celsius")
    events += [
        fr.transcript("And the weather?", final=True),
        fr.eou(0.48, 0.19, "speech_2"),
        fr.user_message("And the weather?"),
        fr.tools_started(weather),
        fr.tools_executed(
            fr.execution(weather, "error", 0.241, exception="TimeoutError: weather API")
        ),
        fr.llm(0.42),
        fr.tts(0.21),
        fr.assistant_message(
            "Sorry, the weather service did not answer. Want me to try",
            interrupted=True,
            eou=0.48,
            llm=0.42,
            tts=0.21,
            e2e=1.21,
            stages=[
                ("endpointing", 0.48),
                ("on_user_turn_completed", 0.0),
                ("llm", 0.18),
                ("tools", 0.24),
                ("llm", 0.10),
                ("tts", 0.17),
                ("playout", 0.04),
            ],
        ),
        fr.transcript("no thanks", final=True),
        fr.eou(0.61, 0.25, "speech_3"),
        fr.user_message("No thanks."),
        fr.llm(0.28),
        fr.tts(0.16),
        fr.assistant_message(
            "Alright!",
            eou=0.61,
            llm=0.28,
            tts=0.16,
            e2e=0.98,
            stages=[
                ("endpointing", 0.61),
                ("on_user_turn_completed", 0.0),
                ("llm", 0.17),
                ("tts", 0.16),
                ("playout", 0.04),
            ],
        ),
        fr.transcript("one more thing about"),
    ]
    return events


@pytest.mark.parametrize("size", SIZES)
def test_snapshot_conversation(snap_compare: SnapCompare, size: tuple[int, int]) -> None:
    rt = FakeRuntime()
    assert snap_compare(make_app(rt), terminal_size=size, run_before=emitting(rt, long_session()))


@pytest.mark.parametrize("size", SIZES)
def test_snapshot_loading_models(snap_compare: SnapCompare, size: tuple[int, int]) -> None:
    rt = FakeRuntime()
    events = [
        fr.mode("local"),
        fr.status(),
        fr.loading("vad", "silero", "ready", 1.0),
        fr.loading("stt", "whisper tiny.en", "model", 0.62, "downloading 47 MB"),
        fr.loading("tts", "piper en_US-joe", "start", None),
        fr.loading("llm", "qwen2.5-0.5b", "start", 0.0),
    ]
    assert snap_compare(make_app(rt), terminal_size=size, run_before=emitting(rt, events))


@pytest.mark.parametrize("size", SIZES)
def test_snapshot_tool_break(snap_compare: SnapCompare, size: tuple[int, int]) -> None:
    rt = FakeRuntime()
    call = fr.call("get_time", "call_9", timezone="Europe/Paris")
    events = [*fr.conversation_script()[:12], fr.status(break_on_tool_call=True)]
    events.append(fr.tool_break(call, "brk_1"))
    assert snap_compare(make_app(rt), terminal_size=size, run_before=emitting(rt, events))


@pytest.mark.parametrize("size", SIZES)
def test_snapshot_tools_tab(snap_compare: SnapCompare, size: tuple[int, int]) -> None:
    rt = FakeRuntime()
    run = emitting(rt, long_session(), then="tools-tab")
    assert snap_compare(make_app(rt), terminal_size=size, run_before=run)


@pytest.mark.parametrize("size", SIZES)
def test_snapshot_latency_tab(snap_compare: SnapCompare, size: tuple[int, int]) -> None:
    rt = FakeRuntime()
    run = emitting(rt, long_session(), then="latency-tab")
    assert snap_compare(make_app(rt), terminal_size=size, run_before=run)


@pytest.mark.parametrize("size", SIZES)
def test_snapshot_controls_active(snap_compare: SnapCompare, size: tuple[int, int]) -> None:
    """Muted, push-to-talk open, recording (fixed clock: 02:05), room mode, an error line."""
    rt = FakeRuntime()
    events = [
        *fr.conversation_script(),
        fr.mode("room", "ROOM demo@wss://lk.example"),
        fr.status(
            mic_muted=True,
            push_to_talk=True,
            recording_dir="/tmp/voicetui-rec",
            recording_since=fr.T0,
        ),
        fr.error("tts", "piper crashed: exit code 139", recoverable=False),
        fr.user_state("speaking"),
        fr.levels(-12.0, -30.0),
    ]
    assert snap_compare(make_app(rt), terminal_size=size, run_before=emitting(rt, events))


def test_snapshot_logs_tab(snap_compare: SnapCompare, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    rt = FakeRuntime()
    events = [
        fr.log(logging.INFO, "session started", "voicetui.runtime", fr.T0),
        fr.log(logging.DEBUG, "vad: speech start", "voicetui.agents", fr.T0 + 1.25),
        fr.log(logging.WARNING, "input device went away, retrying", "voicetui.io", fr.T0 + 2.5),
        fr.log(logging.ERROR, "tts failed: piper crashed", "voicetui.agents", fr.T0 + 3.75),
    ]
    try:
        assert snap_compare(
            make_app(rt), terminal_size=(120, 40), run_before=emitting(rt, events, "logs-tab")
        )
    finally:
        monkeypatch.undo()
        time.tzset()


def test_snapshot_break_modal_edited(snap_compare: SnapCompare) -> None:
    """The break modal after an invalid edit: the error is shown, nothing is sent."""
    rt = FakeRuntime()
    call = fr.call("get_time", "call_9", timezone="Europe/Paris")

    async def run_before(pilot: Pilot[Any]) -> None:
        await emitting(rt, [fr.tool_break(call, "brk_1")])(pilot)
        pilot.app.screen.query_one("#break-args", TextArea).text = '{"timezone": '
        # pressed without the mouse: a hovered button's colour is animated (not deterministic)
        pilot.app.screen.query_one("#break-run-edited", Button).press()
        await pilot.pause(0.4)  # past the button's "pressed" flash
        await settle(pilot)

    assert snap_compare(make_app(rt), terminal_size=(120, 40), run_before=run_before)
    assert rt.called("resolve_tool_break") == []


def test_snapshot_light_theme(snap_compare: SnapCompare) -> None:
    rt = FakeRuntime()
    app = VoiceTUIApp(rt, theme="light", clock=lambda: fr.T0 + 125, bridge_interval=0)
    assert snap_compare(app, terminal_size=(120, 40), run_before=emitting(rt, long_session()))
