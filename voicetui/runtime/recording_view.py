"""``voicetui show DIR``: a recording as a read-only :class:`~voicetui.runtime.api.SessionRuntime`.

:class:`RecordingRuntime` reads a recording's ``events.jsonl`` on its own thread and sends what
the live session sent (:mod:`.recording_view_events`), so a front end shows it as it showed the session:
the conversation, tool calls, latency, the state at the end. By default everything is sent at
once; ``speed`` replays it at its recorded pace (``speed`` times faster) and ``until`` stops
at that many seconds into the recording. Every session command fails with
:data:`READ_ONLY_MESSAGE`.

A recording a crash left behind opens too: what is missing or could not be read is sent as
warning notices (and log records) after the events.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import TYPE_CHECKING, Any, get_args

from ..agents.voice import ToolExecution
from ..recording.files import NotARecordingFile, open_file, parse_json, read_json
from ..recording.load import RecordedEvent, read_events
from ..recording.repair import WAV_CHANNELS, inspect_wav
from ..recording.transcript import fmt_time
from ..untrusted import Sanitizer, clean_text, map_strings
from .api import (
    LogRecordEvent,
    Mode,
    ModeChanged,
    Notice,
    RoomDetails,
    RuntimeEvent,
    RuntimeStatus,
    ToolBreakResolution,
)
from .recording_view_events import LOGGER, Conversion, convert

if TYPE_CHECKING:
    from .api import SessionRuntime

logger = logging.getLogger(LOGGER)

READ_ONLY_MESSAGE = "read-only: this is a recording"
MODES: tuple[str, ...] = get_args(Mode)


class ReadOnlyError(RuntimeError):
    """A session command sent to a recording."""

    def __init__(self) -> None:
        super().__init__(READ_ONLY_MESSAGE)


def _refused() -> Future[Any]:
    fut: Future[Any] = Future()
    fut.set_exception(ReadOnlyError())
    return fut


def _describe_models(info: dict[str, Any]) -> str:
    """One line like the live header's, from ``session.json``'s model descriptions."""
    models = info.get("models") or {}
    parts = []
    for kind in ("stt", "llm", "tts", "vad"):
        m = models.get(f"agent_{kind}") or models.get(kind)
        if isinstance(m, dict):
            name = m.get("model")
            if not name or name == "unknown":
                name = str(m.get("class") or m.get("label") or "?").rsplit(".", 1)[-1]
            parts.append(f"{kind.upper()} {name}")
        else:
            parts.append(f"{kind.upper()} none")
    return ", ".join(parts)


def _first_wall(path: Path) -> float | None:
    try:
        with open_file(path) as f:
            return float(parse_json(f.readline(64 * 1024), where=path)["wall"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


class RecordingRuntime:
    """Opens the recording in ``directory`` (raises FileNotFoundError at once if there is
    none). ``until``: show only what happened in its first ``until`` seconds. ``speed``: send
    the events at their recorded pace times ``speed`` (None: all at once)."""

    def __init__(
        self,
        directory: str | Path,
        *,
        until: float | None = None,
        speed: float | None = None,
    ) -> None:
        d = Path(directory)
        if not os.path.lexists(d / "events.jsonl"):
            raise FileNotFoundError(f"{d}: not a recording (no events.jsonl)")
        if speed is not None and speed <= 0:
            raise ValueError("the speed must be above 0")
        self.directory = d
        self._until = until
        self._speed = speed
        self.info: dict[str, Any] = {}
        self.problems: list[str] = []
        """What is missing or could not be read (filled while the recording is read)."""
        try:
            loaded = map_strings(read_json(d / "session.json"), clean_text)
            self.info = loaded if isinstance(loaded, dict) else {}
        except (OSError, ValueError) as e:
            self.problems.append(
                f"session.json could not be read ({type(e).__name__}): the agent and models "
                "are unknown"
            )
        wall = self.info.get("started_wall")
        self.started_wall = (
            float(wall) if isinstance(wall, int | float) else _first_wall(d / "events.jsonl")
        )
        meta = self.info.get("metadata") or {}
        self._meta: dict[str, Any] = meta if isinstance(meta, dict) else {}
        mode = self._meta.get("mode")
        self._mode: Mode = mode if mode in MODES else "local"
        self._subscribers: list[Callable[[RuntimeEvent], None]] = []
        self._sanitizer = Sanitizer()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._started: Future[None] = Future()
        self._finished: Future[None] = Future()
        self.events_sent = 0

    # --- what the header shows --------------------------------------------------------------
    @property
    def name(self) -> str:
        return clean_text(self.directory.resolve().name)  # (a folder from anyone)

    @property
    def started_text(self) -> str:
        if self.started_wall is None:
            return "start unknown"
        return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.started_wall))

    @property
    def read_only(self) -> bool:
        return True

    @property
    def title(self) -> str:
        """``RECORDING <folder> · <local start time>``."""
        return f"RECORDING {self.name} · {self.started_text}"

    @property
    def agent_name(self) -> str:
        agent = self.info.get("agent") or {}
        label = agent.get("label") if isinstance(agent, dict) else None
        return str(self._meta.get("agent") or label or "unknown agent")

    @property
    def models(self) -> str:
        described = self._meta.get("models")
        return str(described) if described else _describe_models(self.info)

    # --- SessionRuntime: events ---------------------------------------------------------------
    def subscribe(self, callback: Callable[[RuntimeEvent], None]) -> Callable[[], None]:
        with self._lock:
            self._subscribers.append(callback)

        def unsubscribe() -> None:
            with self._lock:
                if callback in self._subscribers:
                    self._subscribers.remove(callback)

        return unsubscribe

    def _emit(self, ev: RuntimeEvent) -> None:
        ev = self._sanitizer.event(ev)  # the recording may come from anyone
        with self._lock:
            subscribers = list(self._subscribers)
        for callback in subscribers:
            try:
                callback(ev)
            except Exception:
                logger.exception("a subscriber failed on %s", ev.type)
        self.events_sent += 1

    # --- SessionRuntime: lifecycle --------------------------------------------------------------
    def start(self) -> Future[None]:
        """Read the recording on a thread and send its events; done when all were sent."""
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._run, name="voicetui-recording-view", daemon=True
            )
            self._thread.start()
        return self._started

    def stop(self) -> Future[None]:
        self._stopping.set()
        if self._thread is None and not self._finished.done():
            self._finished.set_result(None)
        return self._finished

    def join(self, timeout: float | None = None) -> None:
        if self._thread is not None:
            self._thread.join(timeout)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @property
    def mode(self) -> Mode:
        return self._mode

    # --- the thread ---------------------------------------------------------------------------
    def _run(self) -> None:
        try:
            self._send_all()
        except (OSError, ValueError) as e:  # an unreadable file: said once, readable
            message = f"cannot read the recording: {e}"
            logger.error("%s", message)
            self._emit(Notice(level="error", message=message))
            self._set(self._started, error=RuntimeError(message))
        except Exception as e:  # a bug
            logger.exception("reading %s failed", self.directory)
            message = f"cannot read the recording: {type(e).__name__}: {e}"
            self._emit(Notice(level="error", message=message))
            self._set(self._started, error=RuntimeError(message))
        else:
            self._set(self._started)
        finally:
            self._set(self._finished)

    @staticmethod
    def _set(fut: Future[None], error: BaseException | None = None) -> None:
        if fut.done():
            return
        if error is not None:
            fut.set_exception(error)
        else:
            fut.set_result(None)

    def _send_all(self) -> None:
        recorded, torn = read_events(self.directory / "events.jsonl")
        for warning in torn:
            where, _, why = warning.partition(": ")
            if where.endswith("(last, torn)"):
                where = where.removesuffix(" (last, torn)")
                self.problems.append(f"{where} (the last) was cut off mid-write: skipped")
            else:
                self.problems.append(f"{where} is not valid ({why}): skipped")
        self.problems += self._file_problems(recorded)
        conversion = convert(recorded)
        if (problem := conversion.problem()) is not None:
            self.problems.append(problem)
        first_mode = self._initial_mode(conversion)
        self._emit(first_mode)
        self._emit(self._initial_status(conversion))
        for record in self._about():
            self._emit(record)
        self._replay(conversion, skip=first_mode)
        if self._stopping.is_set():
            return
        wall = self.started_wall or time.time()
        for problem in self.problems:
            self._emit(Notice(level="warning", message=f"incomplete recording: {problem}"))
            self._emit(
                LogRecordEvent(level=logging.WARNING, logger=LOGGER, message=problem, created=wall)
            )

    def _replay(self, conversion: Conversion, *, skip: Any) -> None:
        t0 = time.monotonic()
        for recorded, events in conversion.events:
            if self._until is not None and recorded.t > self._until:
                break
            if self._speed is not None:
                wait = t0 + recorded.t / self._speed - time.monotonic()
                if wait > 0 and self._stopping.wait(wait):
                    return
            if self._stopping.is_set():
                return
            for ev in events:
                if ev is skip:
                    continue
                if isinstance(ev, ModeChanged):  # (validated: a mode this version knows)
                    self._mode = ev.mode
                self._emit(ev)

    def _initial_mode(self, conversion: Conversion) -> ModeChanged:
        """The first recorded mode if it came before the conversation (a recording started
        with the session), else the mode ``session.json`` names."""
        for recorded, events in conversion.events:
            if recorded.type == "conversation_item_added":
                break
            for ev in events:
                if isinstance(ev, ModeChanged):
                    self._mode = ev.mode
                    return ev
        attached = next((r.event for r in conversion.events_of("audio_attached")), {})
        described = self._mode.upper()
        if attached.get("input") or attached.get("output"):
            described += f" in: {attached.get('input')} / out: {attached.get('output')}"
        return ModeChanged(mode=self._mode, description=described)

    def _initial_status(self, conversion: Conversion) -> RuntimeStatus:
        for _, events in conversion.events:
            for ev in events:
                if isinstance(ev, RuntimeStatus):
                    return ev
        return RuntimeStatus(
            agent_name=self.agent_name,
            models=self.models,
            mic_muted=False,
            push_to_talk=False,
            recording_dir=None,
            recording_since=None,
            break_on_tool_call=False,
        )

    def _about(self) -> list[LogRecordEvent]:
        """The Logs tab: what ``session.json`` says about the recording."""
        wall = self.started_wall or time.time()
        info = self.info
        lines = [f"recording {self.directory} · started {self.started_text}"]
        agent = info.get("agent")
        if isinstance(agent, dict):
            tools = ", ".join(str(t) for t in agent.get("tools") or []) or "none"
            lines.append(f"agent {agent.get('label')} ({agent.get('class')}) · tools: {tools}")
            if agent.get("instructions"):
                lines.append(f"instructions: {agent.get('instructions')}")
        if info:
            lines.append(f"models: {self.models}")
        versions = info.get("versions")
        if isinstance(versions, dict):
            lines.append(
                f"recorded with voicetui {versions.get('voicetui')} · "
                f"python {versions.get('python')} · {versions.get('platform')}"
            )
        return [
            LogRecordEvent(level=logging.INFO, logger=LOGGER, message=line, created=wall)
            for line in lines
        ]

    def _file_problems(self, recorded: list[RecordedEvent]) -> list[str]:
        d = self.directory
        problems: list[str] = []
        needs_repair = False
        for name in WAV_CHANNELS:
            path = d / name
            if not path.exists():
                problems.append(f"{name} is missing")
                continue
            try:
                layout = inspect_wav(path)
            except NotARecordingFile as e:
                problems.append(str(e))
                continue
            except OSError as e:
                problems.append(f"{name} cannot be read: {e.strerror or e}")
                continue
            if layout is None or not layout.consistent:
                needs_repair = True
                problems.append(f"{name}: the header does not match the audio in the file")
        if needs_repair:
            problems.append(f"`voicetui recording repair {d}` fixes the audio files' headers")
        if not (d / "transcript.md").exists():
            problems.append("transcript.md is missing")
        finished = any(r.type == "recording_stopped" for r in recorded)
        if not finished:
            end = fmt_time(recorded[-1].t) if recorded else "00:00.00"
            problems.append(
                "the recording did not finish (the app was killed or crashed, or it is still "
                f"recording); it ends at {end}"
            )
        return problems

    # --- SessionRuntime: commands (all refused) ---------------------------------------------
    def send_text(self, text: str) -> Future[None]:
        return _refused()

    def say(self, text: str) -> Future[None]:
        return _refused()

    def interrupt(self) -> Future[None]:
        return _refused()

    def set_mic_muted(self, muted: bool) -> Future[None]:
        return _refused()

    def push_to_talk(self) -> Future[None]:
        return _refused()

    def cancel_push_to_talk(self) -> Future[None]:
        return _refused()

    def switch_mode(self, mode: Mode, room: RoomDetails | None = None) -> Future[None]:
        return _refused()

    def list_devices(self) -> Future[list[dict[str, Any]]]:
        return _refused()

    def select_devices(
        self, input_device: str | int | None, output_device: str | int | None
    ) -> Future[None]:
        return _refused()

    def set_break_on_tool_call(self, enabled: bool) -> Future[None]:
        return _refused()

    def resolve_tool_break(self, break_id: str, resolution: ToolBreakResolution) -> Future[None]:
        return _refused()

    def rerun_tool(self, name: str, arguments: str) -> Future[ToolExecution]:
        return _refused()

    def start_recording(self, directory: str | None = None) -> Future[str]:
        return _refused()

    def stop_recording(self) -> Future[None]:
        return _refused()

    def export_transcript(self, path: str) -> Future[str]:
        return _refused()


if TYPE_CHECKING:

    def _implements_the_contract(view: RecordingRuntime) -> SessionRuntime:
        return view
