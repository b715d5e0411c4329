"""``voicetui --headless``: the same session runtime as the TUI, printing the conversation.

Lines (``user: ...``, ``agent: ...``, ``tool: get_time(timezone="Europe/Paris") → ...``,
``error: ...``) go to stdout, the runtime's notices to stderr; with ``--json``, every event is
one JSON object per line on stdout (``voicetui.events.event_data``; audio levels and transcript
pieces are left out).

Input: typed lines from stdin (sent one at a time, each after the reply to the previous one)
and, in WAV mode, the ``--input-wav`` file. The run ends by itself when that input is used up —
the file has played (or stdin ended, in TEXT mode), the agent is done with the last utterance
(answered it, failed, or went back to listening without a reply) and nothing happened for
``settle`` seconds — with exit code 0, or 1 if not one turn got a reply; it ends with 1 if no
reply comes within ``reply_timeout`` or the session fails, and with 130 on Ctrl-C (143
on SIGTERM, 129 on SIGHUP, after the same graceful close).
"""

from __future__ import annotations

import json
import os
import queue
import sys
import threading
import time
from concurrent.futures import Future
from typing import TextIO, assert_never

from .agents.llm import ChatMessage
from .agents.voice.events import (
    AgentFalseInterruptionEvent,
    AgentStateChangedEvent,
    CloseEvent,
    ConversationItemAddedEvent,
    ErrorEvent,
    FunctionToolsExecutedEvent,
    FunctionToolsStartedEvent,
    MetricsCollectedEvent,
    SpeechCreatedEvent,
    UserInputTranscribedEvent,
    UserStateChangedEvent,
)
from .conversation import Entry, Handoff, Said, ToolCall, event_entries, format_tool_call
from .runtime.api import (
    AgentTranscript,
    AudioLevels,
    LogRecordEvent,
    ModeChanged,
    ModelLoading,
    Notice,
    NoticeLevel,
    ReplyCutOff,
    RoomUpdate,
    RuntimeEvent,
    RuntimeStatus,
    ToolBreak,
    ToolRerun,
    event_data,
)
from .runtime.controller import SessionController
from .signals import exit_code, signals_as_interrupt

SKIPPED_JSON = frozenset({"levels", "agent_transcript"})
QUIET_TYPES = frozenset({"levels", "agent_transcript", "metrics_collected", "log"})
NOISE_GRACE = 10.0
"""Voice that brought no words this long after it ended was noise: no reply is due."""
STOP_TIMEOUT = 20.0
"""How long the session may take to close (recording finalised) after the input ends or a
signal came."""
_EOF = object()


def event_json(ev: RuntimeEvent) -> str:
    return json.dumps(event_data(ev), ensure_ascii=False)


def _entry_line(entry: Entry) -> str:
    match entry:
        case Handoff():
            # (the first agent of the session is announced as a handoff from "(start)")
            return f"handoff: {entry.old_agent_id or '(start)'} → {entry.new_agent_id}"
        case Said():
            who = "user" if entry.role == "user" else "agent"
            return f"{who}: {entry.text}{' [interrupted]' if entry.interrupted else ''}"
        case ToolCall():
            call = format_tool_call(entry.name, entry.arguments, entry.output, entry.is_error)
            return f"tool: {call}"


def _notice_line(level: NoticeLevel, message: str) -> str:
    return f"voicetui: {'' if level == 'info' else f'{level}: '}{message}"


def _continued(text: str) -> str:
    """A multi-line text as one entry: its later lines indented, so that every line that does
    not start with a space starts an entry (and none can pass for a ``--json`` line)."""
    return "\n  ".join(text.splitlines()) if "\n" in text or "\r" in text else text


def event_line(ev: RuntimeEvent) -> tuple[str, bool] | None:
    """The line for ``ev`` and whether it goes to stderr (None: not shown)."""
    match ev:
        case ConversationItemAddedEvent() | FunctionToolsExecutedEvent():
            lines = [_continued(_entry_line(entry)) for entry in event_entries(ev, 0.0)]
            return ("\n".join(lines), False) if lines else None
        case ErrorEvent():
            return _continued(f"error: {ev.source}: {ev.message}"), False
        case Notice():
            return _continued(_notice_line(ev.level, ev.message)), True
        case RoomUpdate():
            return _continued(_notice_line(ev.level, ev.event.message)), True
        case ReplyCutOff():
            return "agent: [interrupted before it spoke]", False
        case ModeChanged():
            return f"voicetui: mode {ev.description}", True
        case ModelLoading(stage="start" | "ready" | "failed"):
            what = {"start": "loading", "ready": "ready", "failed": "failed"}[ev.stage]
            return f"voicetui: {what} {ev.kind.upper()} {ev.label} {ev.message}".rstrip(), True
        case (
            ModelLoading()
            | UserInputTranscribedEvent()
            | AgentStateChangedEvent()
            | UserStateChangedEvent()
            | FunctionToolsStartedEvent()
            | SpeechCreatedEvent()
            | MetricsCollectedEvent()
            | AgentFalseInterruptionEvent()
            | CloseEvent()
            | RuntimeStatus()
            | AudioLevels()
            | ToolBreak()
            | ToolRerun()
            | AgentTranscript()
            | LogRecordEvent()
        ):
            return None
        case _:
            assert_never(ev)


BUSY_STATES = frozenset({"thinking", "speaking"})


class _Progress:
    """What the run waits for before it may end, and how the turns went.

    A turn (a user message, typed or spoken) ends with the agent's reply, with an error that
    ends the reply, or when the agent, busy with it, is back to listening without a reply (an
    empty completion, ``max_tool_steps`` reached): the next typed line goes then."""

    def __init__(self) -> None:
        self.agent_state = "initializing"
        self.user_state = "listening"
        self.awaiting_reply = False
        self.asked = False
        """The turn's user message is in the history (a typed line is awaited from its sending,
        before: what happens until then — an interrupted greeting — is not its reply)."""
        self.busy = False
        """The agent has been thinking or speaking since the turn's user message."""
        self.voice_pending = False
        self.voice_ended_at: float | None = None
        self.last_event = time.monotonic()
        self.replied = 0
        self.failed = 0
        """Turns that ended without a reply."""

    def await_reply(self) -> None:
        self.awaiting_reply, self.asked = True, False

    def end_turn(self, *, replied: bool) -> None:
        if self.awaiting_reply:
            if replied:
                self.replied += 1
            else:
                self.failed += 1
        self.awaiting_reply = self.asked = self.busy = False

    def update(self, ev: RuntimeEvent) -> None:
        if ev.type not in QUIET_TYPES:
            self.last_event = time.monotonic()
        match ev:
            case AgentStateChangedEvent():
                self.agent_state = ev.new_state
                if ev.new_state in BUSY_STATES:
                    self.busy = True
                elif self.asked and self.busy and ev.new_state in ("listening", "idle"):
                    self.end_turn(replied=False)  # done with the turn, and no reply came
            case UserStateChangedEvent():
                self.user_state = ev.new_state
                if ev.new_state == "speaking":
                    self.voice_pending, self.voice_ended_at = True, None
                elif ev.old_state == "speaking":
                    self.voice_ended_at = time.monotonic()
            case UserInputTranscribedEvent() if ev.transcript.strip():
                self.voice_pending = False
            case ConversationItemAddedEvent(item=ChatMessage(role="user")):
                self.voice_pending = False
                if not self.awaiting_reply or not self.asked:
                    self.awaiting_reply, self.asked = True, True
                    self.busy = self.agent_state in BUSY_STATES
            case ConversationItemAddedEvent(item=ChatMessage(role="assistant")) if self.asked:
                self.end_turn(replied=True)
            case ErrorEvent() if ev.source in ("llm", "tts", "agent") and (
                not ev.recoverable or ev.source == "agent"
            ):
                self.end_turn(replied=False)  # the reply failed: nothing more will come
            case _:
                pass  # (nothing else moves a turn on)

    @property
    def all_failed(self) -> bool:
        return self.failed > 0 and self.replied == 0

    def settled(self, settle: float) -> bool:
        now = time.monotonic()
        voice_done = not self.voice_pending or (
            self.voice_ended_at is not None and now - self.voice_ended_at > NOISE_GRACE
        )
        return (
            not self.awaiting_reply
            and voice_done
            and self.agent_state in ("listening", "idle")
            and self.user_state != "speaking"
            and now - self.last_event >= settle
        )


def _read_lines(stream: TextIO, lines: queue.Queue[object]) -> None:
    try:
        for line in stream:
            if line.strip():
                lines.put(line.rstrip("\n"))
    except (OSError, ValueError):
        pass
    lines.put(_EOF)


class _Printer:
    def __init__(self, out: TextIO, err: TextIO, json_output: bool) -> None:
        self.out, self.err, self.json = out, err, json_output

    def show(self, ev: RuntimeEvent) -> None:
        if self.json:
            if ev.type not in SKIPPED_JSON:
                self.out.write(event_json(ev) + "\n")
                self.out.flush()
            return
        shown = event_line(ev)
        if shown is not None:
            stream = self.err if shown[1] else self.out
            stream.write(shown[0] + "\n")
            stream.flush()

    def problem(self, message: str) -> None:
        if self.json:
            self.out.write(json.dumps({"type": "fatal", "message": message}) + "\n")
            self.out.flush()
        self.err.write(f"voicetui: {message}\n")
        self.err.flush()


class _TypedInput:
    """Lines from stdin, read in a thread, sent one at a time."""

    def __init__(self, stream: TextIO | None) -> None:
        self._lines: queue.Queue[object] = queue.Queue()
        self._pending: list[str] = []
        self.ended = stream is None
        if stream is not None:
            threading.Thread(
                target=_read_lines, args=(stream, self._lines), name="voicetui-stdin", daemon=True
            ).start()

    def next_line(self) -> str | None:
        self.poll()
        return self._pending.pop(0) if self._pending else None

    def poll(self) -> None:
        while True:
            try:
                item = self._lines.get_nowait()
            except queue.Empty:
                break
            if item is _EOF:
                self.ended = True
            elif isinstance(item, str):
                self._pending.append(item)

    @property
    def used_up(self) -> bool:
        return self.ended and not self._pending


def run_headless(
    controller: SessionController,
    *,
    json_output: bool = False,
    out: TextIO | None = None,
    err: TextIO | None = None,
    stdin: TextIO | None = None,
    settle: float = 1.0,
    reply_timeout: float = 120.0,
) -> int:
    """Run ``controller`` until its input is used up (see the module doc); returns the exit
    code. ``stdin``: lines the user types (None: no typed input)."""
    printer = _Printer(out or sys.stdout, err or sys.stderr, json_output)
    events: queue.Queue[RuntimeEvent] = queue.Queue()
    unsubscribe = controller.subscribe(events.put)
    typed = _TypedInput(stdin)
    started: Future[None] = controller.start()
    try:
        with signals_as_interrupt():  # SIGTERM, SIGHUP: closed like Ctrl-C
            code = _loop(controller, events, typed, printer, settle, reply_timeout, started)
    except KeyboardInterrupt as e:
        code = exit_code(e)
    except BrokenPipeError:
        _silence_stdout()
        code = 0
    finally:
        unsubscribe()
        try:
            with signals_as_interrupt():
                controller.stop().result(timeout=STOP_TIMEOUT)
                controller.join(timeout=5)
        except KeyboardInterrupt as e:
            code = exit_code(e)
        except Exception as e:
            printer.err.write(f"voicetui: stopping: {controller.sanitizer.text(str(e))}\n")
    return code


def _loop(
    controller: SessionController,
    events: queue.Queue[RuntimeEvent],
    typed: _TypedInput,
    printer: _Printer,
    settle: float,
    reply_timeout: float,
    started: Future[None],
) -> int:
    progress = _Progress()
    not_running_since: float | None = None
    sent: Future[None] | None = None
    while True:
        try:
            ev = events.get(timeout=0.05)
        except queue.Empty:
            ev = None
        if ev is not None:
            progress.update(ev)
            printer.show(ev)
            continue
        if not started.done():
            continue
        if (exc := started.exception()) is not None:
            printer.problem(str(exc))
            return 1
        session = controller.session
        if session is None or not session.running:  # closed: a new one starts at once
            not_running_since = not_running_since or time.monotonic()
            if time.monotonic() - not_running_since > 5.0:
                printer.problem("the session closed")
                return 1
            continue
        not_running_since = None
        if sent is not None and sent.done():
            if sent.exception() is not None:
                progress.end_turn(replied=False)  # (the notice says why)
            sent = None
        if not progress.awaiting_reply and (line := typed.next_line()) is not None:
            progress.await_reply()  # until the reply (or an error, or idle without one)
            progress.last_event = time.monotonic()
            sent = controller.send_text(line)
            continue
        typed.poll()
        wav = controller.input_finished
        finite = controller.mode == "wav" or (controller.mode == "text" and typed.ended)
        if not finite:
            continue  # a live microphone or room: until Ctrl-C
        typed_done = typed.used_up or controller.mode == "wav"
        if (wav.is_set() or controller.mode == "text") and typed_done and progress.settled(settle):
            if progress.all_failed:
                n = progress.failed
                printer.problem(f"no reply to any of the {n} turn{'s' if n > 1 else ''}")
                return 1
            return 0
        if progress.awaiting_reply and time.monotonic() - progress.last_event > reply_timeout:
            printer.problem(f"no reply within {reply_timeout:g} s; giving up")
            return 1


def _silence_stdout() -> None:
    """After a broken pipe, so that the interpreter's final flush does not complain."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
