"""A scripted fake :class:`voicetui.runtime.api.SessionRuntime` for TUI tests.

It records every command (``runtime.calls``, ``runtime.called("send_text")``), returns
already-finished futures (``runtime.fail["interrupt"] = RuntimeError("...")`` makes one fail;
``runtime.results["list_devices"] = [...]`` sets a result) and lets the test emit events to the
subscribers, on the test's thread (:meth:`FakeRuntime.emit`) or on another thread like the real
runtime (:meth:`FakeRuntime.emit_threaded`). The module's functions build events.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future
from typing import Any

from textual.notifications import Notification

from voicetui.agents.llm.chat_context import (
    AgentHandoff,
    ChatMessage,
    FunctionCall,
    FunctionCallOutput,
    LatencyStage,
    LatencyStageName,
    MetricsReport,
)
from voicetui.agents.metrics import EOUMetrics, LLMMetrics, TTSMetrics
from voicetui.agents.voice.events import (
    AgentState,
    AgentStateChangedEvent,
    ConversationItemAddedEvent,
    ErrorEvent,
    FunctionToolsExecutedEvent,
    FunctionToolsStartedEvent,
    MetricsCollectedEvent,
    ToolExecution,
    UserInputTranscribedEvent,
    UserState,
    UserStateChangedEvent,
)
from voicetui.runtime.api import (
    AudioLevels,
    LogRecordEvent,
    Mode,
    ModeChanged,
    ModelLoading,
    Notice,
    RoomDetails,
    RuntimeEvent,
    RuntimeStatus,
    ToolBreak,
    ToolBreakResolution,
    ToolRerun,
)

T0 = 1_700_000_000.0
"""A fixed wall-clock time for deterministic tests."""

DEFAULT_DEVICES: list[dict[str, Any]] = [
    {
        "index": 0,
        "name": "Virtual Mic",
        "hostapi": "ALSA",
        "max_input_channels": 1,
        "max_output_channels": 0,
        "default_input": True,
    },
    {
        "index": 1,
        "name": "Virtual Speaker",
        "hostapi": "ALSA",
        "max_input_channels": 0,
        "max_output_channels": 2,
        "default_output": True,
    },
    {
        "index": 2,
        "name": "USB Headset",
        "hostapi": "ALSA",
        "max_input_channels": 1,
        "max_output_channels": 2,
    },
]


def _done(result: Any = None, error: BaseException | None = None) -> Future[Any]:
    fut: Future[Any] = Future()
    if error is not None:
        fut.set_exception(error)
    else:
        fut.set_result(result)
    return fut


class FakeRuntime:
    def __init__(self, *, mode: Mode = "local", reflect: bool = True) -> None:
        self.calls: list[tuple[str, tuple[Any, ...]]] = []
        self.fail: dict[str, BaseException] = {}
        self.results: dict[str, Any] = {"list_devices": DEFAULT_DEVICES}
        self.reflect = reflect
        """Mute / push-to-talk / break / recording commands emit the new RuntimeStatus."""
        self.status_value = status()
        self._mode: Mode = mode
        self._subscribers: list[Callable[[RuntimeEvent], None]] = []
        self._lock = threading.Lock()

    read_only = False
    title = "voicetui"

    # --- test side --------------------------------------------------------------------------
    def emit(self, *events: RuntimeEvent) -> None:
        for ev in events:
            with self._lock:
                subscribers = list(self._subscribers)
            for callback in subscribers:
                callback(ev)

    def emit_threaded(self, *events: RuntimeEvent) -> None:
        """Emit from another thread (like the real runtime) and wait until it is done."""
        thread = threading.Thread(target=self.emit, args=events)
        thread.start()
        thread.join()

    def called(self, name: str) -> list[tuple[Any, ...]]:
        return [args for n, args in self.calls if n == name]

    @property
    def subscriber_count(self) -> int:
        return len(self._subscribers)

    def set_status(self, **changes: Any) -> None:
        self.status_value = self.status_value.model_copy(update=changes)
        self.emit(self.status_value)

    # --- SessionRuntime ---------------------------------------------------------------------
    def _record(self, name: str, *args: Any, result: Any = None) -> Future[Any]:
        self.calls.append((name, args))
        return _done(self.results.get(name, result), self.fail.get(name))

    def subscribe(self, callback: Callable[[RuntimeEvent], None]) -> Callable[[], None]:
        with self._lock:
            self._subscribers.append(callback)

        def unsubscribe() -> None:
            with self._lock:
                if callback in self._subscribers:
                    self._subscribers.remove(callback)

        return unsubscribe

    def start(self) -> Future[None]:
        return self._record("start")

    def stop(self) -> Future[None]:
        return self._record("stop")

    @property
    def mode(self) -> Mode:
        return self._mode

    def send_text(self, text: str) -> Future[None]:
        return self._record("send_text", text)

    def say(self, text: str) -> Future[None]:
        return self._record("say", text)

    def interrupt(self) -> Future[None]:
        return self._record("interrupt")

    def set_mic_muted(self, muted: bool) -> Future[None]:
        fut = self._record("set_mic_muted", muted)
        if self.reflect and "set_mic_muted" not in self.fail:
            self.set_status(mic_muted=muted)
        return fut

    def push_to_talk(self) -> Future[None]:
        fut = self._record("push_to_talk")
        if self.reflect and "push_to_talk" not in self.fail:
            self.set_status(push_to_talk=not self.status_value.push_to_talk)
        return fut

    def cancel_push_to_talk(self) -> Future[None]:
        fut = self._record("cancel_push_to_talk")
        if self.reflect:
            self.set_status(push_to_talk=False)
        return fut

    def switch_mode(self, mode: Mode, room: RoomDetails | None = None) -> Future[None]:
        fut = self._record("switch_mode", mode, room)
        if "switch_mode" not in self.fail:
            self._mode = mode
            if self.reflect:
                desc = f"ROOM {room.room}@{room.url}" if room else mode.upper()
                self.emit(ModeChanged(mode=mode, description=desc))
        return fut

    def list_devices(self) -> Future[list[dict[str, Any]]]:
        return self._record("list_devices")

    def select_devices(
        self, input_device: str | int | None, output_device: str | int | None
    ) -> Future[None]:
        return self._record("select_devices", input_device, output_device)

    def set_break_on_tool_call(self, enabled: bool) -> Future[None]:
        fut = self._record("set_break_on_tool_call", enabled)
        if self.reflect:
            self.set_status(break_on_tool_call=enabled)
        return fut

    def resolve_tool_break(self, break_id: str, resolution: ToolBreakResolution) -> Future[None]:
        return self._record("resolve_tool_break", break_id, resolution)

    def rerun_tool(self, name: str, arguments: str) -> Future[ToolExecution]:
        return self._record("rerun_tool", name, arguments)

    def start_recording(self, directory: str | None = None) -> Future[str]:
        fut = self._record("start_recording", directory, result="/tmp/voicetui-rec")
        if self.reflect and "start_recording" not in self.fail:
            self.set_status(recording_dir="/tmp/voicetui-rec", recording_since=T0)
        return fut

    def stop_recording(self) -> Future[None]:
        fut = self._record("stop_recording")
        if self.reflect:
            self.set_status(recording_dir=None, recording_since=None)
        return fut

    def export_transcript(self, path: str) -> Future[str]:
        return self._record("export_transcript", path, result=path)


# --- event builders ---------------------------------------------------------------------------
def status(**changes: Any) -> RuntimeStatus:
    base = RuntimeStatus(
        agent_name="Assistant",
        models="stt whisper-tiny.en · llm qwen2.5-0.5b · tts piper",
        mic_muted=False,
        push_to_talk=False,
        recording_dir=None,
        recording_since=None,
        break_on_tool_call=False,
        room_configured=True,
    )
    return base.model_copy(update=changes)


def mode(
    mode: Mode = "local", description: str = "LOCAL mic: Virtual Mic / speaker: Virtual Speaker"
) -> ModeChanged:
    return ModeChanged(mode=mode, description=description)


def transcript(text: str, final: bool = False) -> UserInputTranscribedEvent:
    return UserInputTranscribedEvent(transcript=text, is_final=final, created_at=T0)


def agent_state(new: AgentState, old: AgentState = "listening") -> AgentStateChangedEvent:
    return AgentStateChangedEvent(old_state=old, new_state=new, created_at=T0)


def user_state(new: UserState, old: UserState = "listening") -> UserStateChangedEvent:
    return UserStateChangedEvent(old_state=old, new_state=new, created_at=T0)


def user_message(text: str) -> ConversationItemAddedEvent:
    return ConversationItemAddedEvent(item=ChatMessage(role="user", content=[text]), created_at=T0)


def assistant_message(
    text: str,
    *,
    interrupted: bool = False,
    eou: float | None = None,
    llm: float | None = None,
    tts: float | None = None,
    e2e: float | None = None,
    stages: Sequence[tuple[LatencyStageName, float]] = (),
) -> ConversationItemAddedEvent:
    msg = ChatMessage(
        role="assistant",
        content=[text],
        interrupted=interrupted,
        metrics=MetricsReport(
            end_of_turn_delay=eou,
            llm_node_ttft=llm,
            tts_node_ttfb=tts,
            e2e_latency=e2e,
            latency_stages=[LatencyStage(name=n, seconds=v) for n, v in stages],
        ),
    )
    return ConversationItemAddedEvent(item=msg, created_at=T0)


def handoff(old: str | None, new: str) -> ConversationItemAddedEvent:
    return ConversationItemAddedEvent(
        item=AgentHandoff(old_agent_id=old, new_agent_id=new), created_at=T0
    )


def call(name: str, call_id: str = "call_1", **arguments: Any) -> FunctionCall:
    return FunctionCall(call_id=call_id, name=name, arguments=json.dumps(arguments))


def tools_started(*calls: FunctionCall, speech_id: str = "speech_1") -> FunctionToolsStartedEvent:
    return FunctionToolsStartedEvent(function_calls=list(calls), speech_id=speech_id)


def execution(
    c: FunctionCall,
    output: str,
    duration: float = 0.012,
    *,
    exception: str | None = None,
    mocked: bool = False,
    cancelled: bool = False,
) -> ToolExecution:
    return ToolExecution(
        call=c,
        output=FunctionCallOutput(
            call_id=c.call_id,
            name=c.name,
            output=output,
            is_error=exception is not None or cancelled,
        ),
        duration=duration,
        exception=exception,
        mocked=mocked,
        cancelled=cancelled,
    )


def tools_executed(
    *executions: ToolExecution, speech_id: str = "speech_1"
) -> FunctionToolsExecutedEvent:
    return FunctionToolsExecutedEvent(executions=list(executions), speech_id=speech_id)


def eou(
    delay: float, transcription: float, speech_id: str | None = "speech_1"
) -> MetricsCollectedEvent:
    return MetricsCollectedEvent(
        metrics=EOUMetrics(
            end_of_utterance_delay=delay, transcription_delay=transcription, speech_id=speech_id
        )
    )


def llm(ttft: float) -> MetricsCollectedEvent:
    return MetricsCollectedEvent(metrics=LLMMetrics(ttft=ttft, duration=ttft * 2))


def tts(ttfb: float) -> MetricsCollectedEvent:
    return MetricsCollectedEvent(metrics=TTSMetrics(ttfb=ttfb, duration=ttfb * 3))


def error(source: str, message: str, recoverable: bool = False) -> ErrorEvent:
    return ErrorEvent(source=source, message=message, recoverable=recoverable, created_at=T0)


def log(
    level: int, message: str, logger: str = "voicetui.test", created: float = T0
) -> LogRecordEvent:
    return LogRecordEvent(level=level, logger=logger, message=message, created=created)


def levels(mic: float = -20.0, speaker: float = -60.0) -> AudioLevels:
    return AudioLevels(
        input_dbfs=mic,
        input_peak_dbfs=mic + 6,
        output_dbfs=speaker,
        output_peak_dbfs=speaker + 6,
    )


def loading(
    kind: str, label: str, stage: str, fraction: float | None, message: str = ""
) -> ModelLoading:
    return ModelLoading(kind=kind, label=label, stage=stage, fraction=fraction, message=message)


def notice(message: str, level: str = "info") -> Notice:
    return Notice(level=level, message=message)  # type: ignore[arg-type]


def tool_break(c: FunctionCall, break_id: str = "break_1") -> ToolBreak:
    return ToolBreak(break_id=break_id, call=c)


def tool_rerun(ex: ToolExecution) -> ToolRerun:
    return ToolRerun(execution=ex)


def conversation_script() -> list[RuntimeEvent]:
    """A short session: greeting, a spoken question with a tool call, metrics, an answer."""
    paris = call("get_time", "call_1", timezone="Europe/Paris")
    return [
        mode(),
        status(),
        agent_state("listening", "initializing"),
        assistant_message("Hi! I'm your assistant. Ask me anything."),
        user_state("speaking"),
        transcript("what time"),
        transcript("what time is it in"),
        transcript("What time is it in Paris?", final=True),
        user_state("listening", "speaking"),
        eou(0.52, 0.21),
        user_message("What time is it in Paris?"),
        agent_state("thinking"),
        tools_started(paris),
        tools_executed(execution(paris, '{"time": "15:42", "timezone": "Europe/Paris"}', 0.012)),
        llm(0.31),
        tts(0.18),
        agent_state("speaking", "thinking"),
        assistant_message(
            "It's 3:42 PM in Paris.",
            eou=0.52,
            llm=0.31,
            tts=0.18,
            e2e=1.08,
            stages=[
                ("endpointing", 0.52),
                ("on_user_turn_completed", 0.01),
                ("llm", 0.31),
                ("tts", 0.18),
                ("playout", 0.06),
            ],
        ),
        agent_state("listening", "speaking"),
        levels(-24.0, -60.0),
    ]


def emit_all(runtime: FakeRuntime, events: Iterable[RuntimeEvent]) -> None:
    runtime.emit(*events)


# --- app helpers ------------------------------------------------------------------------------
def notifications(app: Any) -> list[Notification]:
    """The toasts the app shows (Textual keeps them in a private list: the one place tests
    read it)."""
    return list(app._notifications)


def screen_text(app: Any) -> str:
    """What the terminal shows, as plain text."""
    import io

    from rich.console import Console

    width, height = app.size
    console = Console(
        width=width,
        height=height,
        file=io.StringIO(),
        force_terminal=True,
        color_system="truecolor",
        record=True,
        legacy_windows=False,
        safe_box=False,
    )
    console.print(
        app.screen._compositor.render_update(full=True, screen_stack=app._background_screens)
    )
    return console.export_text()


async def settle(pilot: Any, rounds: int = 3) -> None:
    """Let the bridge deliver what was emitted and the app draw it."""
    for _ in range(rounds):
        await pilot.pause()


class EchoRuntime(FakeRuntime):
    """A fake that answers: typed text comes back as "You said: …" from another thread, like
    the real runtime. ``python -m tests.fake_runtime`` runs the TUI on it (tmux tests, demos)."""

    def start(self) -> Future[None]:
        fut = self._record("start")
        self.emit_threaded(*conversation_script())
        return fut

    def send_text(self, text: str) -> Future[None]:
        fut = self._record("send_text", text)

        def answer() -> None:
            self.emit(
                user_message(text),
                agent_state("thinking"),
                llm(0.2),
                tts(0.1),
                agent_state("speaking", "thinking"),
                assistant_message(f"You said: {text}", llm=0.2, tts=0.1, e2e=0.35),
                agent_state("listening", "speaking"),
            )

        threading.Timer(0.05, answer).start()
        return fut


def main() -> int:
    import argparse

    from voicetui.tui.app import run_app

    parser = argparse.ArgumentParser(description="the TUI on a scripted fake runtime")
    parser.add_argument("--theme", default=None)
    args = parser.parse_args()
    runtime = EchoRuntime()
    try:
        return run_app(runtime, theme=args.theme, title="voicetui (fake runtime)")
    finally:
        runtime.stop()


if __name__ == "__main__":
    raise SystemExit(main())
