"""Pilot tests: the TUI driven by a scripted fake runtime."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from textual.pilot import Pilot
from textual.widgets import DataTable, Input, Select, Static, TextArea

from tests import fake_runtime as fr
from tests.fake_runtime import FakeRuntime, settle
from voicetui.runtime.api import AgentTranscript, RoomDetails, ToolBreakResolution
from voicetui.tui.app import VoiceTUIApp
from voicetui.tui.screens.devices import DevicesScreen
from voicetui.tui.screens.prompts import ExportScreen, RerunScreen, RoomScreen
from voicetui.tui.screens.tool_break import ToolBreakScreen
from voicetui.tui.widgets.conversation import ConversationView
from voicetui.tui.widgets.header import SessionHeader
from voicetui.tui.widgets.loading import LoadingPanel
from voicetui.tui.widgets.logs import LogsPanel
from voicetui.tui.widgets.state import StatePanel
from voicetui.tui.widgets.tools import ToolsPanel


@asynccontextmanager
async def running(
    runtime: FakeRuntime | None = None, size: tuple[int, int] = (120, 40)
) -> AsyncIterator[tuple[VoiceTUIApp, Pilot[int], FakeRuntime]]:
    rt = runtime or FakeRuntime()
    app = VoiceTUIApp(rt, clock=lambda: fr.T0 + 65, bridge_interval=0)
    async with app.run_test(size=size) as pilot:
        await settle(pilot)
        yield app, pilot, rt


def lines(app: VoiceTUIApp) -> list[str]:
    return [line.strip() for line in app.query_one(ConversationView).plain_lines()]


async def test_starts_and_subscribes_the_runtime() -> None:
    async with running() as (app, pilot, rt):
        assert rt.called("start") == [()]
        assert rt.subscriber_count == 1
    assert rt.subscriber_count == 0


async def test_transcripts_appear_interim_replaced_by_final() -> None:
    async with running() as (app, pilot, rt):
        rt.emit(fr.transcript("what"), fr.transcript("what time is"))
        await settle(pilot)
        conv = app.query_one(ConversationView)
        assert lines(app) == ["You    what time is"]
        assert [p.kind for p in conv.payloads()] == ["interim"]

        rt.emit(fr.transcript("What time is it?", final=True))
        await settle(pilot)
        assert lines(app) == ["You    What time is it?"]
        assert [p.kind for p in conv.payloads()] == ["user"]

        # the committed user message replaces the transcript line, no duplicate
        rt.emit(fr.user_message("What time is it?"), fr.assistant_message("It's noon."))
        await settle(pilot)
        assert lines(app) == ["You    What time is it?", "Agent  It's noon."]
        assert "What time is it?" in fr.screen_text(app)


async def test_transcripts_from_the_runtime_thread() -> None:
    async with running() as (app, pilot, rt):
        rt.emit_threaded(*[fr.transcript("word " * n) for n in range(1, 30)])
        rt.emit_threaded(fr.transcript("the final words", final=True), fr.user_message("x y"))
        await settle(pilot, 5)
        assert lines(app) == ["You    x y"]


async def test_agent_text_revealed_and_interrupted_marked() -> None:
    async with running() as (app, pilot, rt):
        rt.emit(AgentTranscript(speech_id="speech_9", text="Once upon"))
        await settle(pilot)
        assert lines(app) == ["Agent  Once upon"]
        rt.emit(AgentTranscript(speech_id="speech_9", text="Once upon a time"))
        await settle(pilot)
        assert lines(app) == ["Agent  Once upon a time"]
        rt.emit(fr.assistant_message("Once upon a time", interrupted=True))
        await settle(pilot)
        assert lines(app) == ["Agent  Once upon a time  ⏹ interrupted"]


async def test_tool_call_shows_arguments_and_output() -> None:
    async with running() as (app, pilot, rt):
        call = fr.call("get_time", "call_7", timezone="Europe/Paris")
        rt.emit(fr.tools_started(call))
        await settle(pilot)
        assert lines(app) == ['➜ get_time(timezone="Europe/Paris")  … running']
        assert app.query_one("#state", StatePanel).agent_badge()[0] == "⚙ tool running"

        rt.emit(fr.tools_executed(fr.execution(call, '{"time": "15:42"}', 0.012)))
        await settle(pilot)
        assert lines(app) == ['➜ get_time(timezone="Europe/Paris")  ✓ 12 ms']
        assert app.query_one("#state", StatePanel).tools_running == 0

        app.show_tab("tools-tab")
        await settle(pilot)
        detail = str(app.query_one("#tools-detail", Static).render())
        screen = fr.screen_text(app)
        assert '"timezone": "Europe/Paris"' in screen
        assert '"time": "15:42"' in screen
        assert detail  # rendered


async def test_failed_tool_call_shows_the_error() -> None:
    async with running() as (app, pilot, rt):
        call = fr.call("divide", "call_2", a=1, b=0)
        rt.emit(
            fr.tools_started(call),
            fr.tools_executed(
                fr.execution(call, "error", 0.003, exception="ZeroDivisionError: division by zero")
            ),
        )
        await settle(pilot)
        assert lines(app) == ["➜ divide(a=1, b=0)  ✗ 3 ms: ZeroDivisionError: division by zero"]
        record = app.query_one(ToolsPanel).records["call_2"]
        assert record.state == "error"


async def test_a_tool_cut_short_by_an_interruption_ends_its_row() -> None:
    async with running() as (app, pilot, rt):
        call = fr.call("slow_lookup", "call_3", city="Oslo")
        rt.emit(fr.tools_started(call))
        await settle(pilot)
        assert lines(app) == ['➜ slow_lookup(city="Oslo")  … running']
        rt.emit(
            fr.tools_executed(
                fr.execution(
                    call, "The call was cancelled before it finished.", 5.0, cancelled=True
                )
            )
        )
        await settle(pilot)
        assert lines(app) == ['➜ slow_lookup(city="Oslo")  ⏹ cancelled 5.00 s']
        assert app.query_one(ToolsPanel).records["call_3"].state == "cancelled"
        assert app.query_one("#state", StatePanel).tools_running == 0


async def test_a_typed_turn_has_its_e2e_and_is_marked() -> None:
    async with running() as (app, pilot, rt):
        rt.emit(fr.user_message("hello"), fr.assistant_message("Hi!", e2e=0.42))
        msg = fr.assistant_message("Hi!", e2e=0.42)
        msg.item.metrics.typed_input = True
        rt.emit(fr.user_message("typed hello"), msg)
        await settle(pilot)
        rows = app.latency_panel.book.rows
        assert [(r.label, r.e2e) for r in rows] == [("1", 0.42), ("2⌨", 0.42)]
        assert app.latency_panel.book.percentiles(50)["e2e"] == 0.42


async def test_question_mark_shows_the_apps_keys_unless_it_is_typed() -> None:
    from voicetui.tui.screens.keys import KeysScreen

    async with running() as (app, pilot, rt):
        await pilot.press("?")
        await settle(pilot)
        assert isinstance(app.screen, KeysScreen)
        shown = fr.screen_text(app)
        for group in ("Conversation", "Tools", "Recording", "View"):
            assert group in shown
        assert "interrupt the agent" in shown and "break on tool call" in shown
        await pilot.press("escape")
        await settle(pilot)
        assert not isinstance(app.screen, KeysScreen)
        await pilot.press("w", "h", "y", "?")
        await settle(pilot)
        assert app.query_one("#talk", Input).value == "why?"
        assert not isinstance(app.screen, KeysScreen)


async def test_logs_search_with_slash_and_level_filter() -> None:
    from voicetui.tui.widgets.logs import LogsPanel

    async with running() as (app, pilot, rt):
        rt.emit(
            fr.log(20, "loaded the model", "voicetui.plugins.local.llama"),
            fr.log(30, "speaker underrun", "voicetui.io.local"),
            fr.log(10, "debug detail", "voicetui.agents"),
        )
        await settle(pilot)
        app.show_tab("logs-tab")
        await settle(pilot)
        panel = app.query_one(LogsPanel)
        assert [r.message for r in panel.view().payloads()] == [
            "loaded the model",
            "speaker underrun",
        ]
        await pilot.press("/")
        await settle(pilot)
        assert app.focused is not None and app.focused.id == "logs-search"
        await pilot.press("u", "n", "d", "e", "r")
        await settle(pilot)
        assert [r.message for r in panel.view().payloads()] == ["speaker underrun"]
        assert app.query_one("#talk", Input).value == ""  # not typed into the message box
        panel.set_search("")
        panel.set_level(10)
        await settle(pilot)
        assert len(panel.view().payloads()) == 3


async def test_an_error_banner_stays_until_dismissed() -> None:
    from voicetui.agents.voice.events import ErrorEvent
    from voicetui.tui.widgets.error_banner import ErrorBanner

    async with running() as (app, pilot, rt):
        banner = app.query_one(ErrorBanner)
        assert not banner.shown
        rt.emit(ErrorEvent(source="llm", message="invalid API key [/]", recoverable=False))
        rt.emit(ErrorEvent(source="tts", message="piper crashed", recoverable=False))
        await settle(pilot)
        await pilot.pause(7)  # longer than a toast lives
        assert banner.shown and banner.count == 2
        assert "tts: piper crashed" in fr.screen_text(app) and "(+1 more)" in fr.screen_text(app)
        await pilot.press("ctrl+e")
        await settle(pilot)
        assert not banner.shown


async def test_the_state_panel_shows_echo_cancellation_and_its_erle() -> None:
    from voicetui.runtime.api import AudioLevels

    async with running() as (app, pilot, rt):
        rt.emit(
            AudioLevels(
                input_dbfs=-30,
                input_peak_dbfs=-20,
                output_dbfs=-12,
                output_peak_dbfs=-6,
                echo_cancelling=True,
                erle_db=23.4,
            )
        )
        await settle(pilot)
        assert "Echo     cancelling · ERLE 23 dB" in fr.screen_text(app)
        rt.emit(
            AudioLevels(
                input_dbfs=-30,
                input_peak_dbfs=-20,
                output_dbfs=-120,
                output_peak_dbfs=-120,
                echo_cancelling=True,
                erle_db=None,
            )
        )
        await settle(pilot)
        assert "ERLE" not in fr.screen_text(app) and "cancelling" in fr.screen_text(app)


async def test_break_on_tool_call_edit_and_run() -> None:
    async with running() as (app, pilot, rt):
        await pilot.press("f8")
        await settle(pilot)
        assert rt.called("set_break_on_tool_call") == [(True,)]
        assert app.query_one(StatePanel).break_on_tool_call

        call = fr.call("get_time", "call_3", timezone="Europe/Paris")
        rt.emit(fr.tool_break(call, "brk_1"))
        await settle(pilot)
        assert isinstance(app.screen, ToolBreakScreen)
        assert "⏸ waiting for you" in lines(app)[-1]
        app.screen.query_one("#break-args", TextArea).text = '{"timezone": "Asia/Tokyo"}'
        await pilot.click("#break-run-edited")
        await settle(pilot)
        assert not isinstance(app.screen, ToolBreakScreen)
        assert rt.called("resolve_tool_break") == [
            ("brk_1", ToolBreakResolution("run", arguments='{"timezone": "Asia/Tokyo"}'))
        ]
        # while it runs, the row shows the arguments it runs with
        assert lines(app)[-1] == '➜ get_time(timezone="Asia/Tokyo")  … running'
        assert app.query_one(ToolsPanel).records["call_3"].call.arguments == (
            '{"timezone": "Asia/Tokyo"}'
        )


async def test_a_mocked_error_is_tagged_and_ctrl_a_selects_all_in_the_editors() -> None:
    async with running() as (app, pilot, rt):
        call = fr.call("get_weather", "call_8", city="Paris")
        rt.emit(fr.tool_break(call, "brk_8"))
        await settle(pilot)
        editor = app.screen.query_one("#break-args", TextArea)
        editor.focus()
        await pilot.press("ctrl+a")
        assert editor.selected_text == editor.text  # select all, not "go to line start"
        await pilot.click("#break-error-btn")
        await settle(pilot)
        mocked_error = fr.execution(call, "the weather service is down", 0.0, mocked=True)
        mocked_error.output.is_error = True
        rt.emit(fr.tools_executed(mocked_error))
        await settle(pilot)
        assert lines(app)[-1].endswith("(mocked)")
        record = app.query_one(ToolsPanel).records["call_8"]
        assert record.state == "error" and record.mocked


async def test_break_on_tool_call_mock_and_invalid_json() -> None:
    async with running() as (app, pilot, rt):
        call = fr.call("get_weather", "call_4", city="Paris")
        rt.emit(fr.tool_break(call, "brk_2"), fr.tool_break(fr.call("x", "call_5"), "brk_3"))
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, ToolBreakScreen) and screen.break_id == "brk_2"
        screen.query_one("#break-args", TextArea).text = "{not json"
        await pilot.click("#break-run-edited")
        await settle(pilot)
        assert app.screen is screen  # stays open with an error
        assert "not valid JSON" in str(screen.query_one("#break-error", Static).render())
        screen.query_one("#break-output", TextArea).text = '{"sky": "clear"}'
        await pilot.click("#break-mock")
        await settle(pilot)
        assert rt.called("resolve_tool_break") == [
            ("brk_2", ToolBreakResolution("mock", output='{"sky": "clear"}'))
        ]
        # the second break waited for the first
        second = app.screen
        assert isinstance(second, ToolBreakScreen) and second.break_id == "brk_3"
        await pilot.click("#break-error-btn")
        await settle(pilot)
        assert rt.called("resolve_tool_break")[1] == (
            "brk_3",
            ToolBreakResolution("error", output="The user stopped this tool call."),
        )


async def test_rerun_a_past_call_with_edited_arguments() -> None:
    async with running() as (app, pilot, rt):
        call = fr.call("get_time", "call_6", timezone="UTC")
        rt.emit(fr.tools_started(call), fr.tools_executed(fr.execution(call, '"12:00"')))
        await settle(pilot)
        await pilot.press("ctrl+n")  # the Tools tab
        await settle(pilot)
        assert app.tabs.active == "tools-tab"
        await pilot.press("ctrl+r")
        await settle(pilot)
        assert isinstance(app.screen, RerunScreen)
        app.screen.query_one(TextArea).text = '{"timezone": "Asia/Tokyo"}'
        await pilot.click("#rerun-run")
        await settle(pilot)
        assert rt.called("rerun_tool") == [("get_time", '{"timezone": "Asia/Tokyo"}')]
        rerun_call = fr.call("get_time", "rerun_1", timezone="Asia/Tokyo")
        rt.emit(fr.tool_rerun(fr.execution(rerun_call, '"21:00"', 0.004)))
        await settle(pilot)
        tools = app.query_one(ToolsPanel)
        assert [r.rerun for r in tools.records.values()] == [False, True]
        assert '"21:00"' in fr.screen_text(app)


async def test_latency_row_has_the_right_numbers() -> None:
    async with running() as (app, pilot, rt):
        rt.emit(*fr.conversation_script())
        await settle(pilot)
        app.tabs.active = "latency-tab"  # (a hidden tab's table is written when it shows)
        await settle(pilot)
        table: DataTable[object] = app.query_one("#latency-table", DataTable)
        assert table.row_count == 1  # the greeting (no metrics) makes no row
        row = [str(c) for c in table.get_row_at(0)]
        assert row[:7] == ["1", "0.52", "0.21", "0.31", "—", "0.18", "1.08"]
        book = app.query_one("#latency").book  # type: ignore[attr-defined]
        assert book.percentiles(50)["e2e"] == 1.08
        assert app.query_one("#state", StatePanel).last_e2e == 1.08


async def test_latency_for_a_typed_turn_without_eou() -> None:
    async with running() as (app, pilot, rt):
        rt.emit(fr.llm(0.4), fr.tts(0.2), fr.assistant_message("ok", llm=0.4, tts=0.2, e2e=0.7))
        app.tabs.active = "latency-tab"
        await settle(pilot)
        table: DataTable[object] = app.query_one("#latency-table", DataTable)
        row = [str(c) for c in table.get_row_at(0)][:7]
        assert row == ["1", "—", "—", "0.40", "—", "0.20", "0.70"]


async def test_mode_switch_keeps_the_conversation() -> None:
    async with running() as (app, pilot, rt):
        rt.emit(*fr.conversation_script())
        await settle(pilot)
        before = lines(app)
        await pilot.press("f6")
        await settle(pilot)
        assert rt.called("switch_mode") == [("room", None)]
        assert lines(app)[: len(before)] == before
        assert lines(app)[-1] == "·      switched to ROOM"
        assert app.query_one(SessionHeader).mode_description == "ROOM"
        await pilot.press("f6")
        await settle(pilot)
        assert rt.called("switch_mode")[1] == ("local", None)
        assert lines(app)[: len(before)] == before


async def test_room_details_asked_when_not_configured() -> None:
    rt = FakeRuntime()
    rt.fail["switch_mode"] = ValueError("no room configured")
    async with running(rt) as (app, pilot, rt):
        await pilot.press("f6")
        await settle(pilot)
        assert isinstance(app.screen, RoomScreen)
        del rt.fail["switch_mode"]
        app.screen.query_one("#room-url", Input).value = "wss://lk.example"
        app.screen.query_one("#room-name", Input).value = "demo"
        app.screen.query_one("#room-token", Input).value = "tok"
        await pilot.click("#room-join")
        await settle(pilot)
        assert rt.called("switch_mode")[-1] == (
            "room",
            RoomDetails(url="wss://lk.example", room="demo", token="tok"),
        )
        assert app.query_one(SessionHeader).mode_description == "ROOM demo@wss://lk.example"


async def test_the_room_dialog_remembers_and_defaults_the_room_name() -> None:
    rt = FakeRuntime()
    rt.fail["switch_mode"] = ValueError("could not connect")
    async with running(rt) as (app, pilot, rt):
        rt.set_status(room_configured=False, room_url="wss://lk.example", room_name="voicetui")
        await settle(pilot)
        await pilot.press("f6")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, RoomScreen)
        # prefilled from the settings; the room name may stay empty: the configured default
        assert screen.query_one("#room-url", Input).value == "wss://lk.example"
        screen.query_one("#room-name", Input).value = ""
        screen.query_one("#room-token", Input).value = "tok"
        await pilot.click("#room-join")
        await settle(pilot)
        assert rt.called("switch_mode")[-1] == (
            "room",
            RoomDetails(url="wss://lk.example", room="voicetui", token="tok"),
        )
        # it failed: the dialog comes back with the reason and what was entered
        screen = app.screen
        assert isinstance(screen, RoomScreen)
        assert "could not connect" in (screen.reason or "")
        assert screen.query_one("#room-url", Input).value == "wss://lk.example"
        assert screen.query_one("#room-name", Input).value == "voicetui"
        assert screen.query_one("#room-token", Input).value == "tok"


async def test_room_details_asked_first_when_the_settings_have_none() -> None:
    async with running() as (app, pilot, rt):
        rt.set_status(room_configured=False)
        await settle(pilot)
        await pilot.press("f6")
        await settle(pilot)
        assert isinstance(app.screen, RoomScreen)
        assert rt.called("switch_mode") == []  # nothing tried before the user answered


async def test_mute_and_push_to_talk_reach_the_runtime() -> None:
    async with running() as (app, pilot, rt):
        await pilot.press("f2")
        await settle(pilot)
        assert rt.called("set_mic_muted") == [(True,)]
        assert app.query_one("#state", StatePanel).mic_muted
        await pilot.press("f2")
        await settle(pilot)
        assert rt.called("set_mic_muted") == [(True,), (False,)]

        await pilot.press("f3")
        await settle(pilot)
        assert rt.called("push_to_talk") == [()]
        assert app.query_one("#state", StatePanel).push_to_talk
        await pilot.press("f3")  # commit
        await settle(pilot)
        assert rt.called("push_to_talk") == [(), ()]
        assert not app.query_one("#state", StatePanel).push_to_talk

        await pilot.press("f3", "escape")  # open, then cancel
        await settle(pilot)
        assert rt.called("cancel_push_to_talk") == [()]
        assert not app.ptt_open


async def test_interrupt_record_devices_export() -> None:
    async with running() as (app, pilot, rt):
        await pilot.press("f4")
        await pilot.press("f5")
        await settle(pilot)
        assert rt.called("interrupt") == [()]
        assert rt.called("start_recording") == [(None,)]
        header = app.query_one(SessionHeader)
        assert header.recording_since == fr.T0
        assert "● REC 01:05" in fr.screen_text(app)
        await pilot.press("f5")
        await settle(pilot)
        assert rt.called("stop_recording") == [()]
        assert "REC" not in fr.screen_text(app)

        await pilot.press("f7")
        await settle(pilot)
        assert isinstance(app.screen, DevicesScreen)
        await pilot.press("down", "tab", "down", "down")
        await pilot.click("#devices-apply")
        await settle(pilot)
        assert rt.called("select_devices") == [(0, 2)]

        await pilot.press("ctrl+s")
        await settle(pilot)
        assert isinstance(app.screen, ExportScreen)
        app.screen.query_one(Input).value = "/tmp/t.json"
        await pilot.press("enter")
        await settle(pilot)
        assert rt.called("export_transcript") == [("/tmp/t.json",)]


async def test_error_event_shows_an_error_line_and_the_app_stays_up() -> None:
    async with running() as (app, pilot, rt):
        rt.emit(fr.error("llm", "connection refused", recoverable=False))
        await settle(pilot)
        assert lines(app) == ["✗      [llm] connection refused"]
        rt.emit(fr.error("stt", "stream reset", recoverable=True))
        rt.emit(fr.transcript("still here", final=True))
        await settle(pilot)
        assert app.is_running
        assert lines(app)[-2:] == ["✗      [stt] stream reset (retrying)", "You    still here"]


async def test_a_failed_command_becomes_a_notice() -> None:
    rt = FakeRuntime()
    rt.fail["interrupt"] = RuntimeError("nothing to interrupt")
    async with running(rt) as (app, pilot, rt):
        await pilot.press("f4")
        await settle(pilot)
        assert lines(app) == ["✗      interrupt failed: nothing to interrupt"]
        assert any("nothing to interrupt" in str(n.message) for n in fr.notifications(app))
        assert app.is_running


async def test_typing_a_message_calls_send_text() -> None:
    async with running() as (app, pilot, rt):
        await pilot.press(*"hello there", "enter")
        await settle(pilot)
        assert rt.called("send_text") == [("hello there",)]
        assert app.query_one("#talk", Input).value == ""
        # typing from another tab lands in the input too
        app.show_tab("tools-tab")
        await pilot.press(*"hi", "enter")
        await settle(pilot)
        assert rt.called("send_text")[-1] == ("hi",)


async def test_logs_tab_filters_by_level() -> None:
    async with running() as (app, pilot, rt):
        rt.emit(
            fr.log(logging.DEBUG, "debug detail"),
            fr.log(logging.INFO, "session started"),
            fr.log(logging.WARNING, "device went away"),
            fr.log(logging.ERROR, "tts crashed"),
        )
        await settle(pilot)
        app.show_tab("logs-tab")
        await settle(pilot)
        view = app.query_one(LogsPanel).view()

        def shown() -> list[str]:
            return [line.split(": ", 1)[1] for line in view.plain_lines()]

        assert shown() == ["session started", "device went away", "tts crashed"]
        select: Select[int] = app.query_one("#logs-level", Select)
        select.value = logging.WARNING
        await settle(pilot)
        assert shown() == ["device went away", "tts crashed"]
        select.value = logging.DEBUG
        await settle(pilot)
        assert shown()[0] == "debug detail" and len(shown()) == 4
        rt.emit(fr.log(logging.DEBUG, "more"))
        await settle(pilot)
        assert shown()[-1] == "more"


async def test_loading_progress_then_ready() -> None:
    async with running() as (app, pilot, rt):
        rt.emit(fr.loading("stt", "whisper tiny.en", "model", 0.5))
        rt.emit(fr.loading("llm", "qwen2.5-0.5b", "start", 0.0))
        await settle(pilot)
        panel = app.query_one(LoadingPanel)
        assert panel.display and panel.has_class("-active")
        assert "50%" in fr.screen_text(app)
        assert app.query_one(SessionHeader).loading_text == "loading models 0/2…"
        rt.emit(fr.loading("stt", "whisper tiny.en", "ready", 1.0))
        rt.emit(fr.loading("llm", "qwen2.5-0.5b", "ready", 1.0))
        await settle(pilot)
        assert not panel.has_class("-active")
        assert app.query_one(SessionHeader).loading_text == ""


async def test_notice_is_a_toast_and_a_line() -> None:
    async with running() as (app, pilot, rt):
        rt.emit(fr.notice("no microphone: text mode", "warning"))
        await settle(pilot)
        assert lines(app) == ["!      no microphone: text mode"]
        assert any("no microphone" in str(n.message) for n in fr.notifications(app))


async def test_handoff_and_clear() -> None:
    async with running() as (app, pilot, rt):
        rt.emit(fr.handoff("Assistant", "Billing"), fr.transcript("hi", final=True))
        await settle(pilot)
        assert lines(app)[0] == "⇄      handoff Assistant → Billing"
        await pilot.press("ctrl+l")
        await settle(pilot)
        assert lines(app) == []


async def test_narrow_screen_shows_the_compact_state() -> None:
    async with running(size=(80, 24)) as (app, pilot, rt):
        rt.emit(*fr.conversation_script())
        await settle(pilot)
        assert not app.query_one("#sidebar").display
        assert app.query_one("#compact-state").display
        text = fr.screen_text(app)
        assert "It's 3:42 PM in Paris." in text
        assert "agent ● listening" in text


async def test_theme_switch_keeps_rendering() -> None:
    async with running() as (app, pilot, rt):
        rt.emit(*fr.conversation_script())
        await settle(pilot)
        assert app.theme == "dark"
        app.theme = "light"
        await settle(pilot)
        assert "It's 3:42 PM in Paris." in fr.screen_text(app)
        source = app.stylesheet.source[("voicetui-theme.tcss", "theme")]
        assert "light" in source.content


async def test_palette_has_the_commands_and_f9_picks_a_theme() -> None:
    from textual.command import CommandPalette

    async with running() as (app, pilot, rt):
        titles = [c.title for c in app.get_system_commands(app.screen)]
        for expected in (
            "Mute / unmute the microphone",
            "Push-to-talk: start / send",
            "Interrupt the agent",
            "Start / stop recording",
            "Switch local ↔ room",
            "Audio devices…",
            "Pick a theme…",
            "Export the transcript…",
            "Clear the transcript",
            "Quit",
        ):
            assert expected in titles
        mute = next(c for c in app.get_system_commands(app.screen) if c.title.startswith("Mute"))
        mute.callback()
        await settle(pilot)
        assert rt.called("set_mic_muted") == [(True,)]
        await pilot.press("f9")
        await settle(pilot)
        assert isinstance(app.screen, CommandPalette)
        await pilot.press("escape")
        await settle(pilot)
        assert not isinstance(app.screen, CommandPalette)


async def test_a_hidden_latency_table_is_written_when_its_tab_shows() -> None:
    """While the Latency tab is hidden its table is not touched (each write lays the whole
    screen out again); it catches up when the tab shows."""
    async with running() as (app, pilot, rt):
        for i in range(3):
            rt.emit(fr.llm(0.3), fr.assistant_message(f"reply {i}", llm=0.3, e2e=0.9))
        await settle(pilot)
        table: DataTable[object] = app.query_one("#latency-table", DataTable)
        assert table.row_count == 0 and len(app.latency_panel.book.rows) == 3
        app.tabs.active = "latency-tab"
        await settle(pilot)
        assert table.row_count == 3


async def test_function_keys_act_while_typing_but_not_under_a_dialog() -> None:
    """F2–F8 are acted on as the app reads them (priority bindings), even with text in the
    message box; while a dialog is open they do nothing, and its footer does not offer them."""
    async with running() as (app, pilot, rt):
        await pilot.press("h", "i", "f2")
        await settle(pilot)
        assert app.mic_muted and app.query_one("#talk", Input).value == "hi"
        c = fr.call("get_time", timezone="Europe/Paris")
        rt.emit(fr.tools_started(c), fr.tool_break(c))
        await settle(pilot)
        assert isinstance(app.screen, ToolBreakScreen)
        await pilot.press("f2")
        await settle(pilot)
        assert app.mic_muted
        assert "toggle_mute" not in {b.binding.action for b in app.active_bindings.values()}
