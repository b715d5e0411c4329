"""The app on the real runtime (SessionController with fake models and backends): what a user
sees when commands fail — each failure said once, and no control left showing a state the
runtime refused."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from textual.pilot import Pilot
from textual.widgets import Input

from tests import fake_runtime as fr
from tests.fake_runtime import settle
from tests.test_runtime import Backends
from voicetui.agents import Agent, function_tool
from voicetui.agents.testing import FakeLLM, FakeLLMResponse, FakeToolCall
from voicetui.config import Settings
from voicetui.plugins.selection import SessionModels
from voicetui.runtime._io_modes import BackendHooks, ModeBackend, ModeRequest
from voicetui.runtime.controller import SessionController
from voicetui.tui.app import VoiceTUIApp
from voicetui.tui.widgets.conversation import ConversationView
from voicetui.tui.widgets.state import StatePanel


@asynccontextmanager
async def app_on_controller(
    mode: str = "text",
    backends: Backends | None = None,
    *,
    agent: Agent | None = None,
    llm: FakeLLM | None = None,
) -> AsyncIterator[tuple[VoiceTUIApp, Pilot[int], SessionController]]:
    controller = SessionController(
        Settings(mode=mode),  # type: ignore[arg-type]
        agent=agent or Agent(instructions="Be brief."),
        models=SessionModels(stt=None, vad=None, llm=llm or FakeLLM(default="Okay."), tts=None),
        backend_factory=backends or Backends(),
    )
    app = VoiceTUIApp(controller, bridge_interval=0)
    try:
        async with app.run_test(size=(120, 40)) as pilot:
            await until(pilot, lambda: app.mode_event is not None)
            yield app, pilot, controller
    finally:
        controller.stop().result(20)
        controller.join(20)


async def until(pilot: Pilot[int], ok: object, within: float = 20.0) -> None:
    deadline = time.monotonic() + within
    while not ok():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        await pilot.pause(0.02)
    await settle(pilot)


def error_lines(app: VoiceTUIApp) -> list[str]:
    return [
        line.strip()
        for line in app.query_one(ConversationView).plain_lines()
        if "failed" in line or "needs" in line
    ]


async def test_push_to_talk_in_text_mode_says_why_once_and_stays_closed() -> None:
    async with app_on_controller() as (app, pilot, _):
        await pilot.press("f3")
        await until(pilot, lambda: error_lines(app))
        await pilot.pause(0.3)
        await settle(pilot)
        (line,) = error_lines(app)
        assert line.count("failed") == 1 and "needs a microphone" in line
        assert len(fr.notifications(app)) == 1
        assert not app.ptt_open
        assert not app.query_one("#state", StatePanel).push_to_talk


class RoomDown(Backends):
    """LOCAL works (fake devices); the room cannot be reached."""

    async def __call__(self, request: ModeRequest, hooks: BackendHooks) -> ModeBackend:
        if request.mode == "room":
            self.requests.append(request)
            raise ConnectionError("could not reach wss://nowhere.example")
        return await super().__call__(request, hooks)


async def test_a_room_that_fails_at_start_falls_back_to_local_audio() -> None:
    async with app_on_controller("room", RoomDown()) as (app, pilot, controller):
        assert controller.mode == "local"
        assert app.io_mode == "local"
        said = [x for x in app.query_one(ConversationView).plain_lines() if "ROOM mode" in x]
        assert len(said) == 1 and "nowhere.example" in said[0]
        assert "running in LOCAL mode" in said[0]


async def test_ctrl_t_toggles_text_and_audio_and_devices_bring_back_local() -> None:
    async with app_on_controller("local") as (app, pilot, controller):
        await pilot.press("ctrl+t")
        await until(pilot, lambda: app.io_mode == "text")
        assert controller.mode == "text"
        await pilot.press("ctrl+t")
        await until(pilot, lambda: app.io_mode == "local")
        await pilot.press("ctrl+t")
        await until(pilot, lambda: app.io_mode == "text")
        # picking devices in TEXT mode means "talk with these": LOCAL again, with them
        controller.select_devices(1, 2).result(20)
        await until(pilot, lambda: app.io_mode == "local")
        assert controller.mode == "local"


class SlowTool(Agent):
    def __init__(self) -> None:
        super().__init__(instructions="Be brief.")

    @function_tool
    async def slow_lookup(self, city: str) -> str:
        """Look a city up (slowly)."""
        await asyncio.sleep(30)
        return f"{city}: found"


async def test_f4_while_a_tool_runs_ends_its_row_and_f4_while_thinking_leaves_a_trace(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("voicetui.agents.voice.reply.TOOL_INTERRUPTION_TIMEOUT", 0.5)
    llm = FakeLLM(
        [
            FakeLLMResponse(
                input="look up Oslo", tool_calls=[FakeToolCall("slow_lookup", {"city": "Oslo"})]
            ),
            FakeLLMResponse(input="tell me a story", content="Once upon a time.", ttft=30),
        ]
    )
    async with app_on_controller(agent=SlowTool(), llm=llm) as (app, pilot, _):
        talk = app.query_one("#talk", Input)
        talk.value = "look up Oslo"
        await pilot.press("enter")
        await until(pilot, lambda: any("running" in x for x in conv_lines(app)))
        await pilot.press("f4")
        await until(pilot, lambda: any("cancelled" in x for x in conv_lines(app)))
        assert not any("… running" in x for x in conv_lines(app))
        assert app.query_one("#state", StatePanel).tools_running == 0

        talk.value = "tell me a story"
        await pilot.press("enter")
        await until(pilot, lambda: app.query_one("#state", StatePanel).agent_state == "thinking")
        await pilot.press("f4")
        await until(pilot, lambda: conv_lines(app)[-1].startswith("Agent"))
        assert "⏹ interrupted" in conv_lines(app)[-1]


def conv_lines(app: VoiceTUIApp) -> list[str]:
    return [x.strip() for x in app.query_one(ConversationView).plain_lines()]
