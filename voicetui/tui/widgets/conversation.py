"""The conversation: user and agent turns, tool calls, handoffs, errors and notices, in one
virtualized log (see :mod:`.vlog`).

What was said, the tools and the handoffs come as the conversation model's entries
(:mod:`voicetui.conversation`, the one model every renderer reads); so do the tool calls under
way (a :class:`~voicetui.conversation.ToolCall` without output). What a turn is before it is
committed — interim transcripts, the agent's words as they are spoken — is shown until the
entry that commits it replaces it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

from rich.style import Style
from rich.text import Text
from textual.strip import Strip

from ...conversation import Entry, Handoff, Said, ToolCall, format_call, shorten
from ..format import format_duration
from .styling import component_style
from .vlog import VirtualLog, estimate_lines, gutter_strips

LineKind = Literal["user", "interim", "agent", "tool", "handoff", "error", "notice", "info"]

GUTTER = 7


@dataclass(slots=True)
class Line:
    kind: LineKind
    text: str
    interrupted: bool = False
    level: str = "info"
    call: ToolCall | None = None
    """(Tool lines) the call as the conversation model has it."""
    tool_detail: str = ""
    """(Tool lines that ended) how long it took, and for an error what went wrong."""


def tool_line(call: ToolCall) -> Line:
    detail = ""
    if call.output is not None:
        detail = format_duration(call.duration)
        if call.status == "error" and (error := call.error):
            detail += f": {shorten(error, 160)}"
    return Line("tool", format_call(call.name, call.arguments), call=call, tool_detail=detail)


class ConversationView(VirtualLog[Line]):
    """Entries of the conversation model (and the live text before them) in, lines out.
    Called by the app on its thread only."""

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

    # --- the conversation model's entries -----------------------------------------------------
    def add(self, entry: Entry) -> None:
        """An entry of the conversation: what was said, a tool call (running, waiting or
        done: one line per call, updated), a handoff."""
        match entry:
            case Said(role="user"):
                self._user_said(entry.text)
            case Said():
                self._agent_said(entry.text, entry.interrupted)
            case ToolCall():
                self._tool_call(entry)
            case Handoff(old_agent_id=str() as old):
                self.append(Line("handoff", f"handoff {old} → {entry.new_agent_id}"))
            case Handoff():  # (the session's first agent)
                self.append(Line("handoff", f"agent {entry.new_agent_id}"))

    def _user_said(self, text: str) -> None:
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

    def _agent_said(self, text: str, interrupted: bool) -> None:
        """The agent's turn was added to the history (what was actually said): it replaces
        the words shown as they were spoken."""
        line = Line("agent", text, interrupted=interrupted)
        if self._streaming:
            speech_id = next(iter(self._streaming))
            key = self._streaming.pop(speech_id)
            self.update(key, line)
        else:
            self.append(line, key=self._key("agent"))

    def _tool_call(self, call: ToolCall) -> None:
        key = f"tool-{call.call_id}"
        shown = self.get(key)
        if shown is None:
            self.append(tool_line(call), key=key)
        elif call.status != "running" or (shown.call is not None and shown.call.waiting):
            # (a call that starts running after a break may have been edited there; a call
            # already shown as running or done stays as it is)
            self.update(key, tool_line(call))

    # --- live: the turn before it is committed ------------------------------------------------
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

    def agent_text(self, speech_id: str, text: str) -> None:
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
        label, body = self._label_and_body(payload)
        return gutter_strips(self.app.console, label, body, width, GUTTER)

    def _label_and_body(self, payload: Line) -> tuple[Text, Text]:
        match payload.kind:
            case "user" | "interim":
                style = self._style("interim") if payload.kind == "interim" else ""
                return Text("You", style=self._style("user")), Text(payload.text, style=style)
            case "agent":
                body = Text(payload.text or "…")
                if payload.interrupted:
                    body.append("  ⏹ interrupted", style=self._style("warning"))
                return Text("Agent", style=self._style("agent")), body
            case "tool":
                return Text(""), self._tool_body(payload)
            case "handoff":
                style = self._style("handoff")
                return Text("⇄", style=style), Text(payload.text, style=style)
            case "error":
                style = self._style("error")
                return Text("✗", style=style), Text(payload.text, style=style)
            case "notice":
                style = self._style(
                    {"error": "error", "warning": "warning"}.get(payload.level, "dim")
                )
                label = Text({"error": "✗", "warning": "!"}.get(payload.level, "ℹ"))
                label.stylize(style)
                return label, Text(payload.text, style=style)
            case "info":
                style = self._style("dim")
                return Text("·", style=style), Text(payload.text, style=style)

    def _tool_body(self, payload: Line) -> Text:
        body = Text("➜ ", style=self._style("tool"))
        body.append(payload.text, style=self._style("tool"))
        body.append("  ")
        detail = payload.tool_detail
        match payload.call.status if payload.call is not None else "running":
            case "running":
                body.append("… running", style=self._style("dim"))
            case "waiting":
                body.append("⏸ waiting for you", style=self._style("warning"))
            case "error":
                body.append(f"✗ {detail}", style=self._style("fail"))
            case "cancelled":
                body.append(f"⏹ cancelled {detail}", style=self._style("warning"))
            case "mocked":
                body.append(f"✓ {detail} (mocked)", style=self._style("ok"))
            case "ok":
                body.append(f"✓ {detail}", style=self._style("ok"))
        return body
