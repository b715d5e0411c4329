"""SessionController with fakes: the session runs on the runtime's own loop thread, commands
return concurrent futures, events reach subscribers on that thread. The fakes run on the real
clock (the runtime owns its loop), so the audio tests take a few seconds."""

from __future__ import annotations

import json
import logging
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated, Any

import pytest
from pydantic import Field

from tests.virtual_audio import VirtualAudio, virtual_audio_fixture  # noqa: F401
from voicetui.agents import Agent, function_tool
from voicetui.agents.exceptions import LLMError
from voicetui.agents.llm import ChatMessage
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
from voicetui.agents.voice import SessionConnectOptions
from voicetui.config import Settings
from voicetui.plugins.selection import SessionModels
from voicetui.runtime._io_modes import BackendHooks, ModeBackend, ModeRequest, NoAudioDeviceError
from voicetui.runtime._session_ops import LevelsCoalescer
from voicetui.runtime.api import AudioLevels, ToolBreakResolution
from voicetui.runtime.controller import AgentSource, CommandError, SessionController
from voicetui.runtime.log_capture import LogCapture

WAIT = 10.0


class Collector:
    """Records events and the threads they came on; waits for one from the test's thread."""

    def __init__(self) -> None:
        self.events: list[Any] = []
        self.threads: set[str] = set()
        self._cond = threading.Condition()

    def __call__(self, ev: Any) -> None:
        with self._cond:
            self.events.append(ev)
            self.threads.add(threading.current_thread().name)
            self._cond.notify_all()

    def of(self, type_: str) -> list[Any]:
        with self._cond:
            return [e for e in self.events if e.type == type_]

    def wait_for(self, pred: Callable[[Any], bool], timeout: float = WAIT, after: int = 0) -> Any:
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for ev in self.events[after:]:
                    if pred(ev):
                        return ev
                left = deadline - time.monotonic()
                if left <= 0:
                    seen = [e.type for e in self.events]
                    raise AssertionError(f"no matching event within {timeout} s; got {seen}")
                self._cond.wait(left)

    def message(self, role: str, text: str | None = None, after: int = 0) -> ChatMessage:
        ev = self.wait_for(
            lambda e: (
                e.type == "conversation_item_added"
                and isinstance(e.item, ChatMessage)
                and e.item.role == role
                and (text is None or e.item.text_content == text)
            ),
            after=after,
        )
        return ev.item  # type: ignore[no-any-return]

    def messages(self, role: str) -> list[str]:
        return [
            e.item.text_content or ""
            for e in self.of("conversation_item_added")
            if isinstance(e.item, ChatMessage) and e.item.role == role
        ]


class Backends:
    """A backend factory: TEXT, and LOCAL with a FakeAudioInput/FakeAudioOutput pair."""

    def __init__(self, *, no_mic: bool = False) -> None:
        self.no_mic = no_mic
        self.requests: list[ModeRequest] = []
        self.mic: FakeAudioInput | None = None
        self.speaker: FakeAudioOutput | None = None
        self.hooks: BackendHooks | None = None

    async def __call__(self, request: ModeRequest, hooks: BackendHooks) -> ModeBackend:
        self.requests.append(request)
        self.hooks = hooks
        if request.mode == "local":
            if self.no_mic:
                raise NoAudioDeviceError("no microphone found")
            self.mic, self.speaker = FakeAudioInput(), FakeAudioOutput()
            return ModeBackend(
                "local", "LOCAL fake mic", audio_input=self.mic, audio_output=self.speaker
            )
        return ModeBackend("text", "TEXT")


class Weather(Agent):
    def __init__(self) -> None:
        super().__init__(instructions="You tell the weather.")

    @function_tool
    async def get_weather(self, city: Annotated[str, Field(description="a city")]) -> str:
        """Get the weather."""
        return f"sunny in {city}"


@pytest.fixture
def threads_before() -> Iterator[set[threading.Thread]]:
    before = set(threading.enumerate())
    yield before
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        extra = set(threading.enumerate()) - before
        if not extra:
            break
        time.sleep(0.05)
    assert not (set(threading.enumerate()) - before), "threads left running"


def make(
    *,
    mode: str = "text",
    llm: FakeLLM | None = None,
    audio: bool = False,
    backends: Backends | None = None,
    agent: AgentSource | None = None,
    **kw: Any,
) -> tuple[SessionController, Collector, Backends]:
    backends = backends or Backends()
    models = SessionModels(
        stt=FakeSTT() if audio else None,
        vad=FakeVAD() if audio else None,
        llm=llm or FakeLLM(default="Okay."),
        tts=FakeTTS(seconds_per_char=0.01) if audio else None,
    )
    controller = SessionController(
        Settings(mode=mode),  # type: ignore[arg-type]
        agent=agent or Agent(instructions="Be brief."),
        models=models,
        backend_factory=backends,
        **kw,
    )
    events = Collector()
    controller.subscribe(events)
    return controller, events, backends


def stop(controller: SessionController) -> None:
    controller.stop().result(WAIT)
    controller.join(WAIT)


def on_loop(controller: SessionController, fn: Callable[[], Any]) -> Any:
    async def run() -> Any:
        return fn()

    return controller.run(run).result(WAIT)


# --- basics -----------------------------------------------------------------------------------
def test_send_text_gets_a_reply_on_the_loop_thread(threads_before: set[threading.Thread]) -> None:
    controller, events, _ = make(llm=FakeLLM(default="Hello there."))
    controller.start().result(WAIT)
    assert events.of("mode_changed")[0].mode == "text"
    status = events.of("status")[-1]
    assert status.agent_name == "Agent" and "LLM" in status.models and not status.mic_muted
    controller.send_text("hi").result(WAIT)
    assert events.message("assistant", "Hello there.")
    assert events.messages("user") == ["hi"]
    assert events.threads == {"voicetui-session"}
    assert controller.mode == "text"
    stop(controller)
    assert not controller.running


def test_commands_fail_readably_outside_a_running_session(
    threads_before: set[threading.Thread],
) -> None:
    controller, events, _ = make()
    with pytest.raises(CommandError, match="not started"):
        controller.send_text("hi").result(WAIT)
    assert events.of("notice")[-1].level == "error"
    controller.start().result(WAIT)
    with pytest.raises(CommandError, match="the message is empty"):
        controller.send_text("   ").result(WAIT)
    assert "sending your message failed" in events.of("notice")[-1].message
    stop(controller)
    with pytest.raises(CommandError, match="stopping"):
        controller.say("hello").result(WAIT)
    assert controller.stop().done()  # idempotent


def test_say_and_interrupt(threads_before: set[threading.Thread]) -> None:
    controller, events, _ = make()
    controller.start().result(WAIT)
    controller.say("Good morning.").result(WAIT)
    assert events.message("assistant", "Good morning.")
    controller.interrupt().result(WAIT)
    stop(controller)


def test_log_records_and_model_loading_reach_subscribers(
    threads_before: set[threading.Thread],
) -> None:
    capture = LogCapture("info")
    controller, events, _ = make(log_capture=capture, prewarm=True)
    with capture:
        controller.start().result(WAIT)
        loading = events.of("model_loading")
        assert {(e.kind, e.stage) for e in loading} >= {("llm", "start"), ("llm", "ready")}
        logging.getLogger("voicetui.test").warning("from the test thread")
        ev = events.wait_for(lambda e: e.type == "log" and e.message == "from the test thread")
        assert ev.level == logging.WARNING and ev.logger == "voicetui.test"
        assert events.threads == {"voicetui-session"}  # hopped to the runtime's thread
        stop(controller)
    assert any(r.message == "from the test thread" for r in capture.records())


def test_a_failing_subscriber_does_not_break_the_others(
    threads_before: set[threading.Thread],
) -> None:
    controller, events, _ = make()

    def bad(ev: Any) -> None:
        raise ValueError("oops")

    controller.subscribe(bad)
    controller.start().result(WAIT)
    controller.send_text("hi").result(WAIT)
    assert events.message("assistant", "Okay.")
    stop(controller)


def test_start_fails_readably(threads_before: set[threading.Thread]) -> None:
    def broken() -> Agent:
        raise RuntimeError("the agent is broken")

    controller, events, _ = make(agent=broken)
    with pytest.raises(CommandError, match="starting the session failed: the agent is broken"):
        controller.start().result(WAIT)
    with pytest.raises(CommandError, match="did not start"):
        controller.send_text("hi").result(WAIT)
    stop(controller)


# --- microphone -------------------------------------------------------------------------------
def test_no_microphone_falls_back_to_text_with_one_notice(
    threads_before: set[threading.Thread],
) -> None:
    controller, events, _ = make(mode="local", backends=Backends(no_mic=True))
    controller.start().result(WAIT)
    assert [e.mode for e in events.of("mode_changed")] == ["text"]
    notices = events.of("notice")
    assert len(notices) == 1 and "no microphone found" in notices[0].message
    assert "TEXT mode" in notices[0].message
    stop(controller)


def test_mute_reaches_the_session(threads_before: set[threading.Thread]) -> None:
    controller, events, _ = make(mode="local", audio=True)
    controller.start().result(WAIT)
    session = controller.session
    assert session is not None
    assert on_loop(controller, lambda: session.input.audio_enabled)
    controller.set_mic_muted(True).result(WAIT)
    assert not on_loop(controller, lambda: session.input.audio_enabled)
    assert events.of("status")[-1].mic_muted
    controller.set_mic_muted(False).result(WAIT)
    assert on_loop(controller, lambda: session.input.audio_enabled)
    assert not events.of("status")[-1].mic_muted
    stop(controller)


def _recognition_mode(controller: SessionController) -> str:
    session = controller.session
    assert session is not None and session.activity is not None
    recognition = session.activity.recognition
    assert recognition is not None
    return on_loop(controller, lambda: recognition.mode)  # type: ignore[no-any-return]


def _speak(controller: SessionController, backends: Backends, text: str) -> None:
    mic = backends.mic
    assert mic is not None
    on_loop(controller, lambda: mic.add(Utterance(0.8, silence_before=0.1, transcript=text)))


def _transcribed(events: Collector, text: str) -> None:
    """Until the STT's final transcript of ``text`` (the utterance has ended)."""
    events.wait_for(
        lambda e: e.type == "user_input_transcribed" and e.is_final and e.transcript == text
    )


def test_push_to_talk_commits_a_turn_only_when_pressed_again(
    threads_before: set[threading.Thread],
) -> None:
    controller, events, backends = make(mode="local", audio=True)
    controller.start().result(WAIT)
    controller.set_mic_muted(True).result(WAIT)
    assert _recognition_mode(controller) == "vad"
    controller.push_to_talk().result(WAIT)  # first press: mic on, manual turn
    assert events.of("status")[-1].push_to_talk
    assert _recognition_mode(controller) == "manual"
    session = controller.session
    assert session is not None and on_loop(controller, lambda: session.input.audio_enabled)
    _speak(controller, backends, "turn on the lights")
    # the next utterance plays after it: by its end, on the session's clock, the endpointing
    # delay after the first one has long passed, so a VAD commit would have come first
    _speak(controller, backends, "and the fan")
    _transcribed(events, "and the fan")
    assert events.messages("user") == []
    controller.push_to_talk().result(WAIT)  # second press: commit
    assert events.messages("user") == ["turn on the lights and the fan"]
    assert events.message("assistant", "Okay.")
    status = events.of("status")[-1]
    assert not status.push_to_talk and status.mic_muted
    assert _recognition_mode(controller) == "vad"
    assert not on_loop(controller, lambda: session.input.audio_enabled)  # muted again
    stop(controller)


def test_cancelled_push_to_talk_forgets_the_turn_and_vad_turns_resume(
    threads_before: set[threading.Thread],
) -> None:
    controller, events, backends = make(mode="local", audio=True)
    controller.start().result(WAIT)
    controller.push_to_talk().result(WAIT)
    _speak(controller, backends, "never mind")
    _transcribed(events, "never mind")
    controller.cancel_push_to_talk().result(WAIT)
    assert not events.of("status")[-1].push_to_talk
    assert _recognition_mode(controller) == "vad"
    _speak(controller, backends, "hello again")  # VAD turn detection is back
    assert events.message("user", "hello again")
    # (a turn not forgotten would have come first, or been part of this one)
    assert events.messages("user") == ["hello again"]
    stop(controller)


def test_push_to_talk_needs_a_microphone(threads_before: set[threading.Thread]) -> None:
    controller, events, _ = make(mode="text")
    controller.start().result(WAIT)
    with pytest.raises(CommandError, match="needs a microphone"):
        controller.push_to_talk().result(WAIT)
    controller.cancel_push_to_talk().result(WAIT)  # nothing open: nothing to do
    stop(controller)


# --- tools ------------------------------------------------------------------------------------
def weather_llm() -> FakeLLM:
    return FakeLLM(
        [
            FakeLLMResponse(
                input="weather?", tool_calls=[FakeToolCall("get_weather", {"city": "Paris"})]
            ),
            FakeLLMResponse(content="Done."),
        ],
        default="Okay.",
    )


@pytest.mark.parametrize(
    ("resolution", "output", "is_error", "mocked", "arguments"),
    [
        (ToolBreakResolution("run"), "sunny in Paris", False, False, '{"city": "Paris"}'),
        (
            ToolBreakResolution("run", arguments='{"city": "Rome"}'),
            "sunny in Rome",
            False,
            False,
            '{"city": "Rome"}',
        ),
        (ToolBreakResolution("mock", output="raining"), "raining", False, True, None),
        (ToolBreakResolution("error", output="service down"), "service down", True, True, None),
    ],
    ids=["run", "edit", "mock", "error"],
)
def test_break_on_tool_call(
    threads_before: set[threading.Thread],
    resolution: ToolBreakResolution,
    output: str,
    is_error: bool,
    mocked: bool,
    arguments: str | None,
) -> None:
    controller, events, _ = make(llm=weather_llm(), agent=Weather())
    controller.start().result(WAIT)
    controller.set_break_on_tool_call(True).result(WAIT)
    assert events.of("status")[-1].break_on_tool_call
    controller.send_text("weather?").result(WAIT)
    brk = events.wait_for(lambda e: e.type == "tool_break")
    assert brk.call.name == "get_weather" and json.loads(brk.call.arguments) == {"city": "Paris"}
    assert events.of("function_tools_started")
    assert not events.of("function_tools_executed")  # paused
    with pytest.raises(CommandError, match="not valid JSON"):
        controller.resolve_tool_break(brk.break_id, ToolBreakResolution("run", "{oops")).result(
            WAIT
        )
    controller.resolve_tool_break(brk.break_id, resolution).result(WAIT)
    executed = events.wait_for(lambda e: e.type == "function_tools_executed")
    ex = executed.executions[0]
    assert ex.output.output == output and ex.output.is_error == is_error and ex.mocked == mocked
    if arguments is not None:
        assert json.loads(ex.call.arguments) == json.loads(arguments)
    assert events.message("assistant", "Done.")
    with pytest.raises(CommandError, match="no tool call is paused"):
        controller.resolve_tool_break(brk.break_id, resolution).result(WAIT)
    stop(controller)


def test_turning_break_off_runs_the_paused_call(threads_before: set[threading.Thread]) -> None:
    controller, events, _ = make(llm=weather_llm(), agent=Weather())
    controller.start().result(WAIT)
    controller.set_break_on_tool_call(True).result(WAIT)
    controller.send_text("weather?").result(WAIT)
    events.wait_for(lambda e: e.type == "tool_break")
    controller.set_break_on_tool_call(False).result(WAIT)
    executed = events.wait_for(lambda e: e.type == "function_tools_executed")
    assert executed.executions[0].output.output == "sunny in Paris"
    stop(controller)


def test_rerun_tool(threads_before: set[threading.Thread]) -> None:
    controller, events, _ = make(agent=Weather())
    controller.start().result(WAIT)
    execution = controller.rerun_tool("get_weather", '{"city": "Oslo"}').result(WAIT)
    assert execution.output.output == "sunny in Oslo" and not execution.output.is_error
    rerun = events.wait_for(lambda e: e.type == "tool_rerun")
    assert rerun.execution.output.output == "sunny in Oslo"
    with pytest.raises(CommandError, match="has no tool 'nope'"):
        controller.rerun_tool("nope", "{}").result(WAIT)
    with pytest.raises(CommandError, match="JSON object"):
        controller.rerun_tool("get_weather", "[1]").result(WAIT)
    assert events.messages("user") == []  # nothing added to the conversation
    stop(controller)


# --- modes ------------------------------------------------------------------------------------
def test_switch_mode_text_to_local_and_back_keeps_history(
    threads_before: set[threading.Thread],
) -> None:
    llm = FakeLLM(default="Sure.")
    controller, events, backends = make(mode="text", audio=True, llm=llm)
    controller.start().result(WAIT)
    controller.send_text("first").result(WAIT)
    events.message("assistant", "Sure.")
    controller.switch_mode("local").result(WAIT)
    assert controller.mode == "local"
    assert events.of("mode_changed")[-1].description == "LOCAL fake mic"
    session = controller.session
    assert session is not None
    assert on_loop(controller, lambda: session.input.audio) is backends.mic
    assert on_loop(controller, lambda: session.output.audio) is backends.speaker
    mark = len(events.events)
    _speak(controller, backends, "second")
    events.message("user", "second", after=mark)
    events.message("assistant", "Sure.", after=mark)
    controller.switch_mode("text").result(WAIT)
    assert str(controller.mode) == "text"
    assert on_loop(controller, lambda: session.input.audio) is None
    controller.send_text("third").result(WAIT)
    events.message("user", "third")
    history = on_loop(
        controller,
        lambda: [m.text_content for m in session.history.items if isinstance(m, ChatMessage)],
    )
    assert [h for h in history if h != "Sure."] == ["first", "second", "third"]
    assert [e.mode for e in events.of("mode_changed")] == ["text", "local", "text"]
    assert controller.session is session
    stop(controller)


def test_switch_mode_failure_keeps_the_current_mode(threads_before: set[threading.Thread]) -> None:
    controller, events, _ = make(mode="text", backends=Backends(no_mic=True))
    controller.start().result(WAIT)
    with pytest.raises(CommandError, match="switching to LOCAL mode failed: no microphone"):
        controller.switch_mode("local").result(WAIT)
    assert controller.mode == "text"
    controller.send_text("still here").result(WAIT)
    events.message("assistant", "Okay.")
    stop(controller)


def test_audio_levels_are_coalesced(threads_before: set[threading.Thread]) -> None:
    controller, events, backends = make(mode="local", audio=True)
    controller.start().result(WAIT)
    hooks = backends.hooks
    assert hooks is not None

    async def flood() -> None:
        import asyncio

        for i in range(200):  # 400 level reports in 0.2 s
            hooks.levels("input", -float(i), -1.0)
            hooks.levels("output", -30.0, -3.0)
            await asyncio.sleep(0.001)

    controller.run(flood).result(WAIT)
    last = events.wait_for(lambda e: e.type == "levels" and e.input_dbfs == -199.0)
    assert last.output_peak_dbfs == -3.0
    assert len(events.of("levels")) < 200  # (how many per second: test_levels_coalescer_rate)
    stop(controller)


@pytest.mark.looptime
async def test_levels_coalescer_rate() -> None:
    """400 reports over 0.2 s of loop time become one event per interval, the latest values."""
    import asyncio

    emitted: list[AudioLevels] = []
    levels = LevelsCoalescer(emitted.append, 0.05)
    for i in range(200):
        levels.report("input", -float(i), -1.0)
        levels.report("output", -30.0, -3.0)
        await asyncio.sleep(0.001)
    await asyncio.sleep(0.05)
    assert len(emitted) == 5  # at 0, 0.05, 0.10, 0.15 and 0.20 s
    assert emitted[-1].input_dbfs == -199.0 and emitted[-1].output_peak_dbfs == -3.0


@pytest.mark.looptime
async def test_levels_coalescer_does_not_repeat_the_same_levels() -> None:
    """A digitally silent mic reports the same levels 20 times a second: sent once (the UI is
    not woken to show the same meters), and again as soon as anything changes (issue 21)."""
    import asyncio

    emitted: list[AudioLevels] = []
    levels = LevelsCoalescer(emitted.append, 0.05)
    for _ in range(40):  # 2 s of silence
        levels.report("input", -120.0, -120.0)
        await asyncio.sleep(0.05)
    assert len(emitted) == 1 and emitted[0].input_dbfs == -120.0
    levels.report("input", -45.0, -30.0)  # a sound
    await asyncio.sleep(0.06)
    levels.report("input", -120.0, -120.0)  # silence again
    await asyncio.sleep(0.06)
    assert [e.input_dbfs for e in emitted] == [-120.0, -45.0, -120.0]
    levels.report("input", -120.0, -120.0, echo_cancelling=True)  # the state changed
    await asyncio.sleep(0.06)
    assert len(emitted) == 4 and emitted[-1].echo_cancelling


@pytest.mark.looptime
async def test_levels_coalescer_arms_no_timer_for_levels_already_shown(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The same levels again do not even wake the loop (an idle app: issue 21)."""
    import asyncio

    loop = asyncio.get_running_loop()
    armed: list[float] = []
    call_later = loop.call_later

    def counting(delay: float, callback: Any, *args: Any) -> asyncio.TimerHandle:
        if getattr(callback, "__self__", None) is levels:  # (not asyncio.sleep's own timers)
            armed.append(delay)
        return call_later(delay, callback, *args)

    monkeypatch.setattr(loop, "call_later", counting)
    emitted: list[AudioLevels] = []
    levels = LevelsCoalescer(emitted.append, 0.05)
    levels.report("input", -120.0, -120.0)
    await asyncio.sleep(0.06)
    assert len(armed) == 1 and len(emitted) == 1
    for _ in range(20):  # 1 s of the same silence
        levels.report("input", -120.0, -120.0)
        await asyncio.sleep(0.05)
    assert len(armed) == 1 and len(emitted) == 1
    levels.report("input", -50.0, -40.0)
    await asyncio.sleep(0.06)
    assert len(armed) == 2 and len(emitted) == 2


def test_local_mode_on_virtual_devices(
    virtual_audio: VirtualAudio, threads_before: set[threading.Thread]
) -> None:
    models = SessionModels(
        stt=None, vad=FakeVAD(), llm=FakeLLM(default="Okay."), tts=FakeTTS(seconds_per_char=0.03)
    )
    controller = SessionController(
        Settings(mode="local"), agent=Agent(instructions="Hi."), models=models
    )
    events = Collector()
    controller.subscribe(events)
    controller.start().result(WAIT)
    mode = events.of("mode_changed")[0]
    assert mode.mode == "local" and mode.description.startswith("LOCAL mic: ")
    assert " / speaker: " in mode.description
    events.wait_for(lambda e: e.type == "levels")
    mark = len(events.events)
    controller.say("Hello from the speaker, loud and clear.").result(WAIT)
    events.wait_for(lambda e: e.type == "levels" and e.output_peak_dbfs > -40, after=mark)
    controller.set_mic_muted(True).result(WAIT)
    backend = controller._backend
    assert backend is not None and backend.can_mute
    assert on_loop(controller, lambda: backend.audio_input.muted)  # type: ignore[union-attr]
    devices = controller.list_devices().result(WAIT)
    assert devices and {"index", "name", "max_input_channels"} <= set(devices[0])
    controller.switch_mode("text").result(WAIT)
    controller.switch_mode("local").result(WAIT)
    assert [e.mode for e in events.of("mode_changed")] == ["local", "text", "local"]
    controller.select_devices("default", "default").result(WAIT)
    assert events.of("mode_changed")[-1].description == "LOCAL mic: default / speaker: default"
    assert not [e for e in events.of("notice") if e.level != "info"]
    stop(controller)


def test_room_mode_needs_a_server(threads_before: set[threading.Thread]) -> None:
    controller = SessionController(
        Settings(mode="text"),
        agent=Agent(instructions="Hi."),
        models=SessionModels(stt=None, vad=None, llm=FakeLLM(default="x"), tts=None),
    )
    controller.start().result(WAIT)
    with pytest.raises(CommandError, match="ROOM mode needs a LiveKit server URL"):
        controller.switch_mode("room").result(WAIT)
    with pytest.raises(CommandError, match="WAV mode needs --input-wav"):
        controller.switch_mode("wav").result(WAIT)
    assert controller.mode == "text"
    stop(controller)


# --- failures ---------------------------------------------------------------------------------
def test_a_crashing_provider_yields_an_error_and_the_runtime_stays_up(
    threads_before: set[threading.Thread],
) -> None:
    llm = FakeLLM(
        [FakeLLMResponse(input="one", error=LLMError("the LLM crashed", recoverable=False))],
        default="Back again.",
    )
    controller, events, _ = make(llm=llm)
    controller.start().result(WAIT)
    controller.send_text("one").result(WAIT)
    error = events.wait_for(lambda e: e.type == "error")
    assert error.source == "llm" and "the LLM crashed" in error.message
    controller.send_text("two").result(WAIT)
    assert events.message("assistant", "Back again.")
    stop(controller)


def test_a_session_closed_by_errors_is_replaced_keeping_history(
    threads_before: set[threading.Thread],
) -> None:
    llm = FakeLLM(
        [FakeLLMResponse(input="two", error=LLMError("the LLM crashed", recoverable=False))],
        default="Fine.",
    )
    controller, events, _ = make(
        llm=llm, session_options={"conn_options": SessionConnectOptions(max_unrecoverable_errors=0)}
    )
    controller.start().result(WAIT)
    first = controller.session
    controller.send_text("one").result(WAIT)
    events.message("assistant", "Fine.")
    controller.send_text("two").result(WAIT)
    events.wait_for(lambda e: e.type == "close")
    notice = events.wait_for(lambda e: e.type == "notice" and "history kept" in e.message)
    assert notice.level == "warning"
    controller.send_text("three").result(WAIT)
    events.message("user", "three")
    second = controller.session
    assert second is not None and second is not first
    history = on_loop(
        controller,
        lambda: [m.text_content for m in second.history.items if isinstance(m, ChatMessage)],
    )
    assert history[:3] == ["one", "Fine.", "two"]
    stop(controller)


# --- recording and export ---------------------------------------------------------------------
def test_recording_start_and_stop(threads_before: set[threading.Thread], tmp_path: Path) -> None:
    controller = SessionController(
        Settings(mode="text", models={"openai_api_key": "sk-secret-value-123"}),  # type: ignore[arg-type]
        agent=Agent(instructions="Be brief."),
        models=SessionModels(stt=None, vad=None, llm=FakeLLM(default="Okay."), tts=None),
        backend_factory=Backends(),
    )
    events = Collector()
    controller.subscribe(events)
    controller.start().result(WAIT)
    directory = Path(controller.start_recording(str(tmp_path / "rec")).result(WAIT))
    assert directory.parent == tmp_path / "rec" and directory.is_dir()
    status = events.wait_for(lambda e: e.type == "status" and e.recording_dir is not None)
    assert status.recording_dir == str(directory) and status.recording_since is not None
    assert controller.start_recording().result(WAIT) == str(directory)  # already recording
    controller.send_text("hello").result(WAIT)
    events.message("assistant")
    controller.stop_recording().result(WAIT)
    events.wait_for(lambda e: e.type == "status" and e.recording_dir is None)
    names = {p.name for p in directory.iterdir()}
    assert {"events.jsonl", "transcript.md", "session.json", "audio.wav"} <= names
    lines = (directory / "events.jsonl").read_text().splitlines()
    types = {json.loads(line)["type"] for line in lines}
    assert "conversation_item_added" in types and "notice" in types
    assert "hello" in (directory / "transcript.md").read_text()
    for path in directory.iterdir():
        assert b"sk-secret-value-123" not in path.read_bytes()
    stop(controller)


def test_detach_while_recording_lets_go_of_the_devices(
    threads_before: set[threading.Thread], tmp_path: Path
) -> None:
    controller, events, backends = make(mode="local", audio=True)
    controller.start().result(WAIT)
    controller.start_recording(str(tmp_path / "rec")).result(WAIT)
    session = controller.session
    assert session is not None and backends.mic is not None
    assert session.input.audio is not backends.mic  # wrapped by the recording
    backend = controller._backend
    assert backend is not None

    async def detach() -> tuple[Any, Any]:
        await backend.detach(session)
        return session.input.audio, session.output.audio

    assert controller.run(detach).result(WAIT) == (None, None)
    controller.stop_recording().result(WAIT)
    stop(controller)


def test_export_transcript(threads_before: set[threading.Thread], tmp_path: Path) -> None:
    controller, _, _ = make(llm=weather_llm(), agent=Weather())
    events = Collector()
    controller.subscribe(events)
    controller.start().result(WAIT)
    controller.send_text("weather?").result(WAIT)
    events.message("assistant", "Done.")
    md = controller.export_transcript(str(tmp_path / "out" / "talk.md")).result(WAIT)
    text = Path(md).read_text()
    assert "# voicetui transcript — Weather" in text
    assert "**User**" in text and "weather?" in text and "**Agent**" in text and "Done." in text
    assert 'get_weather(city="Paris") → sunny in Paris' in text
    js = controller.export_transcript(str(tmp_path / "talk.json")).result(WAIT)
    data = json.loads(Path(js).read_text())
    assert data["agent"] == "Weather"
    types = [it["type"] for it in data["items"]]
    assert types.count("function_call") == 1 and types.count("function_call_output") == 1
    stop(controller)


# --- log capture ------------------------------------------------------------------------------
def test_log_capture_silences_the_terminal_and_restores_it(
    capfd: pytest.CaptureFixture[str],
) -> None:
    root = logging.getLogger()
    terminal = logging.StreamHandler(sys.stderr)
    root.addHandler(terminal)
    lonely = logging.getLogger("voicetui.test.lonely")
    lonely.propagate = False
    lonely_handler = logging.StreamHandler(sys.stderr)
    lonely.addHandler(lonely_handler)
    capture = LogCapture("debug", capacity=3)
    got: list[Any] = []
    capture.subscribe(got.append)

    def noisy(ev: Any) -> None:
        logging.getLogger("voicetui.test").error("logged while delivering")  # no recursion

    capture.subscribe(noisy)
    try:
        with capture:
            assert terminal not in root.handlers and lonely_handler not in lonely.handlers
            logging.getLogger("voicetui.test").info("hello %s", "world")
            lonely.warning("from a non-propagating logger")
            warnings.warn("a python warning", UserWarning, stacklevel=1)
            try:
                raise ValueError("boom")
            except ValueError:
                logging.getLogger("voicetui.test").exception("it failed")

            def crash() -> None:
                raise RuntimeError("thread crash")

            t = threading.Thread(target=crash, name="crasher")
            t.start()
            t.join()
        assert terminal in root.handlers and lonely_handler in lonely.handlers
        out, err = capfd.readouterr()
        assert err == "" and out == ""
        messages = [e.message for e in got]
        assert messages[0] == "hello world"
        assert "from a non-propagating logger" in messages
        assert any("a python warning" in m for m in messages)
        assert any(m.startswith("it failed") and "ValueError: boom" in m for m in messages)
        assert any("uncaught exception in thread crasher" in m for m in messages)
        assert len(capture.records()) == 3  # the ring keeps the last ones
    finally:
        root.removeHandler(terminal)
        lonely.removeHandler(lonely_handler)
        lonely.propagate = True


@pytest.mark.parametrize(
    ("turn", "expected"), [({}, True), ({"preemptive_generation": False}, False)]
)
def test_embedded_models_reply_preemptively_unless_the_settings_say_otherwise(
    threads_before: set[threading.Thread],
    monkeypatch: pytest.MonkeyPatch,
    turn: dict[str, Any],
    expected: bool,
) -> None:
    from voicetui.plugins import selection

    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.setattr(
        selection,
        "build_models",
        lambda resolved: SessionModels(stt=None, vad=None, llm=FakeLLM(default="Ok."), tts=None),
    )
    controller = SessionController(
        Settings(mode="text", turn=turn),  # type: ignore[arg-type]
        agent=Agent(instructions="Be brief."),
        backend_factory=Backends(),
        prewarm=False,
    )
    controller.start().result(WAIT)
    session = controller.session
    assert session is not None and session.options.preemptive_generation is expected
    stop(controller)


def test_the_status_names_the_room_without_its_credentials() -> None:
    from voicetui.runtime.controller import without_credentials

    assert without_credentials("wss://bob:s3cret@lk.example:7880/x") == "wss://lk.example:7880/x"
    assert without_credentials("wss://lk.example") == "wss://lk.example"
    assert without_credentials(None) is None


def test_text_mode_loads_only_the_llm_and_audio_models_load_on_switching(
    threads_before: set[threading.Thread],
) -> None:
    warmed: list[str] = []

    class LLM(FakeLLM):
        async def prewarm(self, **_: Any) -> None:
            warmed.append("llm")

    class STT(FakeSTT):
        async def prewarm(self, **_: Any) -> None:
            warmed.append("stt")

    class TTS(FakeTTS):
        async def prewarm(self, **_: Any) -> None:
            warmed.append("tts")

    backends = Backends()
    controller = SessionController(
        Settings(mode="text"),
        agent=Agent(instructions="Be brief."),
        models=SessionModels(stt=STT(), vad=FakeVAD(), llm=LLM(default="Okay."), tts=TTS()),
        backend_factory=backends,
        prewarm=True,
    )
    events = Collector()
    controller.subscribe(events)
    controller.start().result(WAIT)
    assert warmed == ["llm"]  # ready for typing without loading speech models
    controller.switch_mode("local").result(WAIT)
    assert warmed == ["llm", "stt", "tts"]  # loaded (with progress) before audio starts
    loading = [(e.kind, e.stage) for e in events.of("model_loading")]
    assert ("stt", "ready") in loading and ("tts", "ready") in loading
    controller.switch_mode("text").result(WAIT)
    controller.switch_mode("local").result(WAIT)
    assert warmed == ["llm", "stt", "tts"]  # once
    stop(controller)
