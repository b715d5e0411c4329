"""``LiveKitAgentRuntime``: a :class:`~voicetui.runtime.api.SessionRuntime` whose agent is a
LiveKit Agents agent in its own process, driven over LiveKit's console protocol (what
``lk agent console`` does): voicetui listens on 127.0.0.1, starts
``PYTHON -m livekit.agents console FILE --connect-addr HOST:PORT`` and maps what the agent sends
onto voicetui's events, so the TUI, ``--headless`` and the recorder work unchanged.

What the protocol cannot do (say, interrupt, push-to-talk, tool breakpoints, re-running a tool,
rooms) fails with a reason (:data:`UNSUPPORTED`); the TUI greys those keys out."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from livekit.protocol.agent_pb import agent_session as pb

from ...agents.llm import ChatItem, ChatMessage
from ...agents.voice import ToolExecution
from ...agents.voice.events import (
    AgentStateChangedEvent,
    ConversationItemAddedEvent,
    ErrorEvent,
    FunctionToolsExecutedEvent,
)
from .._loop import LoopRuntime
from .._transcript import write_transcript
from ..api import (
    CommandError,
    Mode,
    ModeChanged,
    RoomDetails,
    RuntimeEvent,
    RuntimeStatus,
    SessionRuntime,
    ToolBreakResolution,
)
from ..log_capture import LogCapture
from . import wire
from .agent_process import AgentProcess, agent_command, line_level
from .audio_bridge import AudioBridge
from .connection import AgentNotConnected, ConsoleServer
from .mapping import EventMapper

if TYPE_CHECKING:
    from ...recording import Recorder

logger = logging.getLogger("voicetui.livekit")
agent_logger = logging.getLogger("livekit.agent")

CONNECT_TIMEOUT = 120.0
JOB_FAILED = "unhandled exception while running the job task"  # LiveKit's log line
JOB_FAILED_GRACE = 0.5  # importing livekit-agents and its plugins can take a while
INSTALL_HINT = "pip install 'voicetui[livekit-agents]', or name another Python with --python"
RESTART_HINT = "type a message (or press Ctrl+T) to start it again"
UNSUPPORTED: dict[str, str] = {
    "say": "the console protocol has no request to make a LiveKit agent say a text",
    "interrupt": "the console protocol has no interrupt request (typing interrupts the agent)",
    "push_to_talk": "the console protocol has no manual-turn request",
    "cancel_push_to_talk": "the console protocol has no manual-turn request",
    "toggle_break": "a LiveKit agent's tools run in its own process: no tool breakpoints",
    "rerun_tool": "a LiveKit agent's tools run in its own process: they cannot be re-run",
    "toggle_room": "the LiveKit agent is in console mode (run it with `lk agent dev` for a room)",
}
"""Session commands (TUI action names) a LiveKit agent cannot take, and why."""
UNAVAILABLE_NOTICE = (
    "LiveKit agent: interrupt (F4), push-to-talk (F3), tool breakpoints (F8), re-running "
    "tools and rooms are not part of the console protocol (greyed out); typing interrupts"
)


class _NoSession:
    """What the recorder asks of a session, for one it cannot see into: events reach it through
    ``record_event``; models and options are the agent's own."""

    current_agent = None

    def on(self, event: str, callback: Any) -> None: ...

    def off(self, event: str, callback: Any) -> None: ...


@dataclass(frozen=True)
class _AgentView:
    running: bool


class LiveKitAgentRuntime(LoopRuntime):
    def __init__(
        self,
        agent_file: str | os.PathLike[str],
        *,
        python: str | None = None,
        extra_args: Sequence[str] = (),
        mode: Mode = "text",
        record_dir: str | None = None,
        log_capture: LogCapture | None = None,
        connect_timeout: float = CONNECT_TIMEOUT,
        input_device: str | int | None = None,
        output_device: str | int | None = None,
        echo_cancellation: bool = True,
        launcher: Sequence[str] | None = None,
    ) -> None:
        """``launcher``: the command that replaces ``PYTHON -m livekit.agents`` (tests)."""
        super().__init__(log_capture=log_capture)
        self.agent_file = Path(agent_file).expanduser().resolve()
        self.python = python or sys.executable
        self.extra_args = list(extra_args)
        self.unsupported = dict(UNSUPPORTED)
        self._mode: Mode = mode if mode in ("text", "local") else "text"
        self._record_dir = record_dir
        self._connect_timeout = connect_timeout
        self._devices = (input_device, output_device)
        self._echo_cancellation = echo_cancellation
        self._launcher = list(launcher) if launcher is not None else None
        self._server: ConsoleServer | None = None
        self._process: AgentProcess | None = None
        self._watcher: asyncio.Task[None] | None = None
        self._mapper = EventMapper()
        self._history: list[ChatItem] = []
        self._recorder: Recorder | None = None
        self._audio: AudioBridge | None = None
        self._mic_muted = False
        self._framework = "LiveKit Agents"
        self._agent_alive = False
        self._typed_at: float | None = None
        self._job_failed = asyncio.Event()
        self.input_finished = threading.Event()
        """(``--headless``: no WAV input here, so never set.)"""

    @property
    def session(self) -> _AgentView:
        """(``--headless`` asks whether the session runs: the agent does.)"""
        return _AgentView(self._agent_alive)

    @property
    def agent_process(self) -> AgentProcess | None:
        """The agent's process (the last one started; None before the first)."""
        return self._process

    # --- what the header shows ------------------------------------------------------------
    @property
    def mode(self) -> Mode:
        return self._mode

    @property
    def read_only(self) -> bool:
        return False

    @property
    def title(self) -> str:
        return "voicetui · LiveKit agent"

    @property
    def history(self) -> list[ChatItem]:
        return list(self._history)

    def _status(self) -> RuntimeStatus:
        rec = self._recorder
        return RuntimeStatus(
            agent_name=self.agent_file.name,
            models=f"{self._framework} ({self.python})",
            mic_muted=self._mic_muted,
            push_to_talk=False,
            recording_dir=str(rec.directory) if rec is not None and rec.directory else None,
            recording_since=rec.started_at if rec is not None else None,
            break_on_tool_call=False,
        )

    def _mode_changed(self) -> ModeChanged:
        if self._mode == "local" and self._audio is not None:
            return ModeChanged(mode="local", description=f"LOCAL {self._audio.description}")
        return ModeChanged(mode="text", description="TEXT")

    # --- events -----------------------------------------------------------------------------
    def _emit(self, ev: RuntimeEvent) -> None:
        super()._emit(ev)
        rec = self._recorder
        if rec is not None and ev.type not in ("log", "levels"):
            rec.record_event(ev)

    def _on_message(self, msg: pb.AgentSessionMessage) -> None:
        kind = msg.WhichOneof("message")
        if kind == "event":
            for mapped in self._mapper.map(msg.event):
                ev = self._typed_latency(mapped)
                self._remember(ev)
                self._emit(ev)
        elif kind == "audio_output":
            if self._audio is not None:
                self._audio.play(msg.audio_output)
        elif kind == "audio_playback_flush":
            if self._audio is not None:
                self._audio.flush()
            else:  # nothing plays in text mode: played out at once
                self._send_quietly(wire.playback_finished())
        elif kind == "audio_playback_clear":
            if self._audio is not None:
                self._audio.clear()
        elif kind == "request":
            self._mapper.note_once("request", "the agent sent a request: the console takes none")
        else:
            self._mapper.note_once(f"message:{kind}", "an unknown message from the agent: %s", kind)

    def _typed_latency(self, ev: RuntimeEvent) -> RuntimeEvent:
        """A typed turn's reply: LiveKit reports no end-to-end latency for it (no end of
        speech); voicetui's is from sending the text to the reply's start, as for its own."""
        typed_at = self._typed_at
        if (
            typed_at is None
            or not isinstance(ev, ConversationItemAddedEvent)
            or not isinstance(ev.item, ChatMessage)
            or ev.item.role != "assistant"
        ):
            return ev
        self._typed_at = None
        m = ev.item.metrics
        if m.e2e_latency is not None:
            return ev
        start = m.started_speaking_at or ev.item.created_at
        metrics = m.model_copy(
            update={"e2e_latency": max(0.0, start - typed_at), "typed_input": True}
        )
        item = ev.item.model_copy(update={"metrics": metrics})
        return ev.model_copy(update={"item": item})

    def _remember(self, ev: RuntimeEvent) -> None:
        if isinstance(ev, ConversationItemAddedEvent):
            self._history.append(ev.item)
        elif isinstance(ev, FunctionToolsExecutedEvent):
            for ex in ev.executions:
                self._history.extend((ex.call, ex.output))

    def _send_quietly(self, msg: pb.AgentSessionMessage) -> None:
        if self._server is not None and self._server.connected:
            try:
                self._server.send(msg)
            except AgentNotConnected:
                pass

    def _on_agent_line(self, stream: str, text: str) -> None:
        agent_logger.log(line_level(text), "%s", text)
        if JOB_FAILED in text:  # the worker lives on, but no session will ever dial in
            self._job_failed.set()

    # --- the agent process ------------------------------------------------------------------
    async def _start_session(self) -> None:
        self._emit(self._mode_changed())
        self._emit(self._status())
        self._notice("info", UNAVAILABLE_NOTICE)
        self._server = ConsoleServer(on_message=self._on_message)
        await self._server.start()
        try:
            await self._start_agent()
        except RuntimeError as e:  # the app stays up: it shows why, and typing restarts it
            self._report_down(str(e))
        if self._mode == "local":
            try:
                await self._open_audio()
            except Exception as e:
                self._mode = "text"
                self._notice("warning", f"no local audio ({e}): TEXT mode, type to talk")
                self._emit(self._mode_changed())
                await self._apply_io()
        if self._record_dir is not None:
            await self._start_recording(self._record_dir)

    async def _start_agent(self) -> None:
        assert self._server is not None
        if not self.agent_file.is_file():
            raise RuntimeError(f"{self.agent_file}: no such file")
        argv = agent_command(
            self.python,
            self.agent_file,
            self._server.address,
            self.extra_args,
            launcher=self._launcher,
        )
        self._server.expect_new_connection()
        self._mapper = EventMapper()
        proc = AgentProcess(argv, on_line=self._on_agent_line, cwd=Path.cwd())
        try:
            await proc.start()
        except OSError as e:
            raise RuntimeError(f"cannot start {self.python}: {e.strerror or e}") from e
        self._process = proc
        logger.info("started the LiveKit agent (pid %s): %s", proc.pid, " ".join(argv))
        exited = asyncio.ensure_future(proc.wait())
        connected = asyncio.ensure_future(self._server.wait_connected())
        self._job_failed.clear()
        job_failed = asyncio.ensure_future(self._job_failed.wait())
        try:
            done, _ = await asyncio.wait(
                {exited, connected, job_failed},
                timeout=self._connect_timeout,
                return_when=asyncio.FIRST_COMPLETED,
            )
        finally:
            connected.cancel()
            job_failed.cancel()
        if exited in done:
            raise RuntimeError(self._exit_message(proc, exited.result(), "did not start"))
        if job_failed in done and connected not in done:
            await asyncio.sleep(JOB_FAILED_GRACE)  # the rest of its traceback
            exited.cancel()
            await proc.stop()
            raise RuntimeError(
                "the LiveKit agent did not start: its entrypoint raised" + self._tail(proc)
            )
        if connected not in done:
            exited.cancel()
            await proc.stop()
            raise RuntimeError(
                f"the LiveKit agent did not connect within {self._connect_timeout:.0f} s"
                + self._tail(proc)
            )
        self._agent_alive = True
        self._watcher = asyncio.create_task(self._watch(proc, exited), name="lk-agent.watch")
        await self._apply_io()
        self._spawn(self._ask_framework(), "lk-agent.framework")

    async def _apply_io(self) -> None:
        """TEXT: the agent neither listens nor speaks (no TTS needed, replies come as text);
        LOCAL: both. (The console protocol's only mode switch: ``UpdateIO``.)"""
        if self._server is None or not self._server.connected:
            return
        audio = self._mode == "local"
        io = pb.SessionRequest.UpdateIO(
            input=pb.SessionRequest.UpdateIO.Input(audio_enabled=audio),
            output=pb.SessionRequest.UpdateIO.Output(audio_enabled=audio),
        )
        try:
            await self._server.request(wait=10.0, update_io=io)
        except Exception as e:
            self._notice(
                "warning",
                f"the LiveKit agent did not switch its audio {'on' if audio else 'off'}: {e}",
            )

    async def _ask_framework(self) -> None:
        assert self._server is not None
        try:
            info = await self._server.request(
                get_framework_info=pb.SessionRequest.GetFrameworkInfo()
            )
        except Exception as e:
            logger.debug("the agent did not say its framework version: %s", e)
            return
        fw = info.get_framework_info
        self._framework = f"LiveKit Agents {fw.sdk_version}".strip()
        self._emit(self._status())

    @staticmethod
    def _tail(proc: AgentProcess) -> str:
        lines = list(proc.tail)[-6:]
        return (":\n" + "\n".join(lines)) if lines else ""

    def _exit_message(self, proc: AgentProcess, code: int, what: str) -> str:
        how = f"was killed by signal {-code}" if code < 0 else f"exited with code {code}"
        return f"the LiveKit agent {what}: it {how}" + self._tail(proc)

    async def _watch(self, proc: AgentProcess, exited: asyncio.Future[int]) -> None:
        code = await exited
        if proc.stopping or self._stopping:
            return
        self._report_down(self._exit_message(proc, code, "stopped"))

    def _report_down(self, message: str) -> None:
        self._agent_alive = False
        if "No module named 'livekit" in message:
            message += f"\n{self.python} has no livekit-agents: {INSTALL_HINT}"
        logger.error("%s", message)
        self._emit(ErrorEvent(source="agent", message=message, recoverable=False))
        self._emit(AgentStateChangedEvent(old_state="idle", new_state="initializing"))
        self._notice("warning", f"the LiveKit agent is not running: {RESTART_HINT}")

    async def _ensure_agent(self) -> None:
        """Start the agent again if it exited (the restart the exit notice offers)."""
        if self._agent_alive and self._server is not None and self._server.connected:
            return
        if self._process is not None:
            await self._process.stop()
        self._notice(
            "info",
            f"restarting the LiveKit agent {self.agent_file.name} (a new session: it does not "
            "remember the conversation above)",
        )
        await self._start_agent()

    async def _close_session(self) -> None:
        await self._stop_recorder()
        if self._audio is not None:
            await self._audio.aclose()
            self._audio = None
        if self._server is not None:
            await self._server.close()
        if self._process is not None:
            await self._process.stop()
        if self._watcher is not None:
            self._watcher.cancel()

    # --- commands ---------------------------------------------------------------------------
    def _unsupported(self, action: str) -> Future[Any]:
        return self._failed(f"not available for a LiveKit agent: {self.unsupported[action]}")

    def send_text(self, text: str) -> Future[None]:
        async def run() -> None:
            await self._ensure_agent()
            assert self._server is not None
            self._typed_at = time.time()
            self._spawn(self._run_input(text), "lk-agent.run_input")

        return self._submit("sending the text", run)

    async def _run_input(self, text: str) -> None:
        assert self._server is not None
        try:
            await self._server.request(wait=600.0, run_input=pb.SessionRequest.RunInput(text=text))
        except AgentNotConnected:
            pass  # the exit is reported by the watcher
        except Exception as e:
            self._notice("error", f"the LiveKit agent could not answer: {e}")

    def say(self, text: str) -> Future[None]:
        return self._unsupported("say")

    def interrupt(self) -> Future[None]:
        return self._unsupported("interrupt")

    def push_to_talk(self) -> Future[None]:
        return self._unsupported("push_to_talk")

    def cancel_push_to_talk(self) -> Future[None]:
        return self._unsupported("cancel_push_to_talk")

    def set_break_on_tool_call(self, enabled: bool) -> Future[None]:
        if not enabled:
            return self._submit("break on tool call", self._nothing, needs_session=False)
        return self._unsupported("toggle_break")

    def resolve_tool_break(self, break_id: str, resolution: ToolBreakResolution) -> Future[None]:
        return self._unsupported("toggle_break")

    def rerun_tool(self, name: str, arguments: str) -> Future[ToolExecution]:
        return self._unsupported("rerun_tool")

    @staticmethod
    async def _nothing() -> None:
        return None

    def set_mic_muted(self, muted: bool) -> Future[None]:
        async def run() -> None:
            self._mic_muted = muted
            if self._audio is not None:
                self._audio.muted = muted
            self._emit(self._status())

        return self._submit("muting the microphone", run)

    def switch_mode(self, mode: Mode, room: RoomDetails | None = None) -> Future[None]:
        async def run() -> None:
            if mode not in ("text", "local"):
                raise CommandError(
                    f"not available for a LiveKit agent: {self.unsupported['toggle_room']}"
                )
            await self._ensure_agent()
            if mode == self._mode:
                return
            if mode == "local":
                await self._open_audio()
            elif self._audio is not None:
                audio, self._audio = self._audio, None
                await audio.aclose()
            self._mode = mode
            await self._apply_io()
            self._emit(self._mode_changed())

        return self._submit(f"switching to {mode.upper()} mode", run)

    async def _open_audio(self) -> None:
        assert self._server is not None
        audio = AudioBridge(
            send=self._send_quietly,
            emit=self._emit,
            recorder=lambda: self._recorder,
            input_device=self._devices[0],
            output_device=self._devices[1],
            echo_cancellation=self._echo_cancellation,
        )
        await audio.start()
        audio.muted = self._mic_muted
        self._audio = audio
        self._mode = "local"

    def list_devices(self) -> Future[list[dict[str, Any]]]:
        async def run() -> list[dict[str, Any]]:
            from ...io.local import list_devices

            return [asdict(d) for d in await asyncio.to_thread(list_devices)]

        return self._submit("listing the audio devices", run, needs_session=False)

    def select_devices(
        self, input_device: str | int | None, output_device: str | int | None
    ) -> Future[None]:
        async def run() -> None:
            self._devices = (input_device, output_device)
            if self._audio is not None:
                await self._audio.aclose()
                self._audio = None
                await self._open_audio()
                self._emit(self._mode_changed())

        return self._submit("selecting the audio devices", run)

    # --- recording and export ---------------------------------------------------------------
    def start_recording(self, directory: str | None = None) -> Future[str]:
        return self._submit(
            "starting the recording", lambda: self._start_recording(directory or self._record_dir)
        )

    async def _start_recording(self, directory: str | None) -> str:
        from platformdirs import user_data_dir

        from ...recording import Recorder

        if self._recorder is not None:
            return str(self._recorder.directory)
        root = Path(directory) if directory else Path(user_data_dir("voicetui")) / "recordings"
        rec = Recorder(
            root,
            session=_NoSession(),  # type: ignore[arg-type]
            sample_rate=wire.WIRE_SAMPLE_RATE if self._mode == "local" else 24000,
            metadata={
                "agent": str(self.agent_file),
                "models": self._framework,
                "mode": self._mode,
                "framework": "livekit-agents",
            },
            on_error=lambda message: self._notice("error", f"recording: {message}"),
        )
        await rec.start()
        self._recorder = rec
        rec.record_event(self._mode_changed())
        self._emit(self._status())
        self._notice("info", f"recording to {rec.directory}")
        return str(rec.directory)

    async def _stop_recorder(self) -> None:
        rec, self._recorder = self._recorder, None
        if rec is None:
            return
        try:
            await rec.stop()
        finally:
            self._emit(self._status())
        self._notice("info", f"recording saved in {rec.directory}")

    def stop_recording(self) -> Future[None]:
        return self._submit("stopping the recording", self._stop_recorder)

    def export_transcript(self, path: str) -> Future[str]:
        async def run() -> str:
            if not self._history:
                raise RuntimeError("there is no conversation yet")
            return await asyncio.to_thread(
                write_transcript,
                list(self._history),
                path,
                agent=self.agent_file.name,
                mode=self._mode,
                sanitize=self.sanitizer.text,
            )

        return self._submit("exporting the transcript", run, needs_session=False)


if TYPE_CHECKING:

    def _implements_the_contract(runtime: LiveKitAgentRuntime) -> SessionRuntime:
        return runtime


__all__ = ["UNSUPPORTED", "LiveKitAgentRuntime"]
