"""The conversation: user and agent turns, tool calls, handoffs, errors and notices, in one
virtualized log (see :mod:`.vlog`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

from rich.style import Style
from rich.text import Text
from textual.strip import Strip

from ...agents.llm.chat_context import FunctionCall
from ...agents.voice.events import ToolExecution
from ..format import format_call, format_duration, shorten
from .styling import component_style
from .tools import ToolStatus
from .vlog import VirtualLog, estimate_lines, gutter_strips

LineKind = Literal["user", "interim", "agent", "tool", "handoff", "error", "notice", "info"]

GUTTER = 7


@dataclass(slots=True)
class Line:
    kind: LineKind
    text: str
    interrupted: bool = False
    level: str = "info"
    tool_status: ToolStatus = "running"
    tool_detail: str = ""


class ConversationView(VirtualLog[Line]):
    """Semantic methods in, lines out. Called by the app on its thread only."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "conversation--user",
        "conversation--agent",
        "conversation--interim",
        "conversation--tool",
        "conversation--ok",
        "conversation--fail",
        "conversation--dim",
        "conversation--error",
        "conversation--warning",
        "conversation--handoff",
    }

    DEFAULT_CSS = """
    ConversationView {
        padding: 0 1;
        & > .conversation--user { color: $vt-user; text-style: bold; }
        & > .conversation--agent { color: $vt-agent; text-style: bold; }
        & > .conversation--interim { color: $text-muted; text-style: italic; }
        & > .conversation--tool { color: $vt-tool; }
        & > .conversation--ok { color: $success; }
        & > .conversation--fail { color: $error; }
        & > .conversation--dim { color: $text-muted; }
        & > .conversation--error { color: $error; text-style: bold; }
        & > .conversation--warning { color: $warning; }
        & > .conversation--handoff { color: $secondary; text-style: bold; }
    }
    """

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self._pending_user: list[str] = []
        self._interim_key: str | None = None
        self._streaming: dict[str, str] = {}
        self._seq = 0
        self._styles: dict[str, Style] = {}

    def _key(self, prefix: str) -> str:
        self._seq += 1
        return f"{prefix}-{self._seq}"

    # --- user -------------------------------------------------------------------------------
    def user_transcript(self, text: str, final: bool) -> None:
        """An STT transcript: the interim line is replaced as it changes, then made final."""
        text = text.strip()
        key = self._interim_key
        if key is None:
            if not text:
                return
            key = self._key("user")
            self._pending_user.append(key)
            self.append(Line("user" if final else "interim", text), key=key)
        elif text:
            self.update(key, Line("user" if final else "interim", text))
        elif final:
            self.remove_entry(key)
            self._pending_user.remove(key)
        self._interim_key = None if final else key

    def user_message(self, text: str) -> None:
        """The user's turn was committed: one line with its whole text replaces the
        transcripts that made it (or is added, for typed text)."""
        pending = [k for k in self._pending_user if k != self._interim_key]
        self._pending_user = [self._interim_key] if self._interim_key else []
        if pending:
            self.update(pending[0], Line("user", text))
            for key in pending[1:]:
                self.remove_entry(key)
        else:
            self.append(Line("user", text), key=self._key("user"))

    # --- agent ------------------------------------------------------------------------------
    def agent_text(self, speech_id: str, text: str, final: bool) -> None:
        """The agent's words so far for one speech, revealed as they are spoken."""
        key = self._streaming.get(speech_id)
        if key is None:
            # a new speech: an older one that never became a message stays as it was
            self._streaming.clear()
            key = self._key("agent")
            self._streaming[speech_id] = key
            self.append(Line("agent", text), key=key)
        else:
            self.update(key, Line("agent", text))

    def agent_message(self, text: str, interrupted: bool) -> None:
        """The agent's turn was added to the history (what was actually said)."""
        line = Line("agent", text, interrupted=interrupted)
        if self._streaming:
            speech_id = next(iter(self._streaming))
            key = self._streaming.pop(speech_id)
            self.update(key, line)
        else:
            self.append(line, key=self._key("agent"))

    # --- tools ------------------------------------------------------------------------------
    def tool_started(self, call: FunctionCall) -> None:
        key = f"tool-{call.call_id}"
        line = self.get(key)
        if line is None:
            self.append(Line("tool", format_call(call.name, call.arguments)), key=key)
        elif line.tool_status == "waiting":
            line.tool_status = "running"
            line.text = format_call(call.name, call.arguments)  # (edited at the break)
            self.update(key)

    def tool_waiting(self, call: FunctionCall) -> None:
        """Break on tool call: the call waits for the user."""
        self.tool_started(call)
        line = self.get(f"tool-{call.call_id}")
        if line is not None:
            line.tool_status = "waiting"
            self.update(f"tool-{call.call_id}")

    def tool_executed(self, execution: ToolExecution) -> None:
        call = execution.call
        key = f"tool-{call.call_id}"
        status: ToolStatus
        if execution.cancelled:  # cut short by an interruption
            status, detail = "cancelled", ""
        elif execution.exception is not None or execution.output.is_error:
            status = "error"
            detail = execution.exception or execution.output.output
            if execution.mocked:  # an error given in the tool's place (break on tool call)
                detail += " (mocked)"
        elif execution.mocked:
            status, detail = "mocked", ""
        else:
            status, detail = "ok", ""
        line = Line(
            "tool",
            format_call(call.name, call.arguments),
            tool_status=status,
            tool_detail=f"{format_duration(execution.duration)}"
            + (f": {shorten(detail, 160)}" if detail else ""),
        )
        if self.get(key) is None:
            self.append(line, key=key)
        else:
            self.update(key, line)

    # --- the rest ---------------------------------------------------------------------------
    def handoff(self, old_agent: str | None, new_agent: str) -> None:
        text = f"handoff {old_agent} → {new_agent}" if old_agent else f"agent {new_agent}"
        self.append(Line("handoff", text))

    def error(self, source: str, message: str, recoverable: bool) -> None:
        suffix = " (retrying)" if recoverable else ""
        self.append(Line("error", f"[{source}] {message}{suffix}", level="error"))

    def notice(self, level: str, message: str) -> None:
        self.append(Line("notice", message, level=level))

    def info(self, message: str) -> None:
        self.append(Line("info", message))

    def clear_conversation(self) -> None:
        self._pending_user.clear()
        self._interim_key = None
        self._streaming.clear()
        self.clear()

    # --- rendering --------------------------------------------------------------------------
    def _style(self, name: str) -> Style:
        style = self._styles.get(name)
        if style is None:
            style = component_style(self, f"conversation--{name}")
            self._styles[name] = style
        return style

    def restyle(self) -> None:
        """The theme changed: render everything with its styles."""
        self._styles.clear()
        self.rerender_all()

    def estimate_height(self, payload: Line, width: int) -> int:
        extra = len(payload.tool_detail) + 12 if payload.kind == "tool" else 0
        return estimate_lines(payload.text + " " * extra, max(8, width - GUTTER))

    def render_payload(self, payload: Line, width: int) -> list[Strip]:
        console = self.app.console
        kind = payload.kind
        if kind in ("user", "interim"):
            label = Text("You", style=self._style("user"))
            body = Text(payload.text, style=self._style("interim") if kind == "interim" else "")
        elif kind == "agent":
            label = Text("Agent", style=self._style("agent"))
            body = Text(payload.text or "…")
            if payload.interrupted:
                body.append("  ⏹ interrupted", style=self._style("warning"))
        elif kind == "tool":
            label = Text("")
            body = Text("➜ ", style=self._style("tool"))
            body.append(payload.text, style=self._style("tool"))
            body.append("  ")
            status = payload.tool_status
            if status == "running":
                body.append("… running", style=self._style("dim"))
            elif status == "waiting":
                body.append("⏸ waiting for you", style=self._style("warning"))
            elif status == "error":
                body.append(f"✗ {payload.tool_detail}", style=self._style("fail"))
            elif status == "cancelled":
                body.append(f"⏹ cancelled {payload.tool_detail}", style=self._style("warning"))
            elif status == "mocked":
                body.append(f"✓ {payload.tool_detail} (mocked)", style=self._style("ok"))
            else:
                body.append(f"✓ {payload.tool_detail}", style=self._style("ok"))
        elif kind == "handoff":
            label = Text("⇄", style=self._style("handoff"))
            body = Text(payload.text, style=self._style("handoff"))
        elif kind == "error":
            label = Text("✗", style=self._style("error"))
            body = Text(payload.text, style=self._style("error"))
        elif kind == "notice":
            style = {"error": "error", "warning": "warning"}.get(payload.level, "dim")
            label = Text({"error": "✗", "warning": "!"}.get(payload.level, "ℹ"))
            label.stylize(self._style(style))
            body = Text(payload.text, style=self._style(style))
        else:
            label = Text("·", style=self._style("dim"))
            body = Text(payload.text, style=self._style("dim"))
        return gutter_strips(console, label, body, width, GUTTER)
