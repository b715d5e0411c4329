"""The one event union: every runtime event goes to JSON and back unchanged (``events.jsonl``,
``--headless --json``), and each front end has a case for each (mypy checks that; these check
what a room update becomes)."""

from __future__ import annotations

import logging

import pytest

from tests import fake_runtime as fr
from voicetui.events import RUNTIME_EVENT, RoomUpdate, RuntimeEvent, event_data
from voicetui.headless import event_line
from voicetui.io.room import RoomIOEvent
from voicetui.recording.event_log import (
    EVENT_LOG,
    KNOWN_TYPES,
    AudioPlaybackFinished,
    RecordingGap,
    decode,
    encode,
)
from voicetui.runtime.api import AgentTranscript, ReplyCutOff
from voicetui.tui import messages as m
from voicetui.tui.bridge import to_message


def room_update() -> RoomUpdate:
    event = RoomIOEvent(
        type="disconnected",
        message="disconnected from LiveKit room 'r' (server shutdown)",
        reason="server shutdown",
        error=RuntimeError("not recorded"),
    )
    return RoomUpdate(event=event, level="warning")


def every_event() -> list[RuntimeEvent]:
    c = fr.call("get_time", timezone="Europe/Paris")
    return [
        *fr.conversation_script(),
        fr.status(recording_dir="/tmp/rec", recording_since=fr.T0),
        fr.mode("room", "ROOM r@wss://example"),
        fr.levels(),
        fr.loading("llm", "qwen", "start", None),
        fr.notice("hello", "warning"),
        fr.tools_started(c),
        fr.tool_break(c),
        fr.tool_rerun(fr.execution(c, "12:00")),
        AgentTranscript(speech_id="speech_1", text="Hello"),
        ReplyCutOff(speech_id="speech_2"),
        fr.log(logging.INFO, "loaded"),
        fr.error("llm", "the LLM failed"),
        room_update(),
    ]


@pytest.mark.parametrize("ev", every_event(), ids=lambda ev: ev.type)
def test_an_event_goes_to_json_and_back(ev: RuntimeEvent) -> None:
    data = event_data(ev)
    assert data["type"] == ev.type
    back = RUNTIME_EVENT.validate_python(data)
    assert type(back) is type(ev) and event_data(back) == data
    assert decode(ev.type, encode(ev)) == back  # the recording's adapter reads it the same


def test_what_cannot_be_recorded_is_left_out() -> None:
    data = event_data(room_update())
    assert "error" not in data["event"] and data["event"]["reason"] == "server shutdown"


def test_the_recorders_own_notes_are_typed_too() -> None:
    for note in (RecordingGap(start=1.0, duration=0.5), AudioPlaybackFinished(segment=3)):
        assert EVENT_LOG.validate_python(encode(note)) == note
    assert {"recording_started", "notice", "room", "conversation_item_added"} <= KNOWN_TYPES
    assert decode("from_a_newer_version", {}) is None


def test_a_room_update_is_shown_like_a_notice() -> None:
    update = room_update()
    msg = to_message(update)
    assert isinstance(msg, m.NoticePosted)
    assert (msg.notice.level, msg.notice.message) == ("warning", update.event.message)
    assert event_line(update) == (f"voicetui: warning: {update.event.message}", True)
