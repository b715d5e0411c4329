"""The conversation as data, for every renderer: what the user and the agent said, the tools
that ran and the handoffs, built from events (live or recorded) or from a session's history,
and grouped in turns; plus the text helpers the renderers share.

Renderers: the TUI's conversation view (live, and ``voicetui show``), ``--headless`` lines,
``transcript.md`` (written as a recording goes), the exported transcript
(``history_markdown``), ``voicetui show --text`` and ``recording diff``.

What is still under way is the same model, not yet final: a tool call that runs or waits for the
user (:func:`pending_calls`: a :class:`ToolCall` without output). The words of a turn that is
not committed yet (interim transcripts, the agent's text as it is spoken) are not entries: the
live view shows them until the entry that commits them comes.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal, TypeAlias

from .agents.llm import AgentHandoff, ChatItem, ChatMessage, FunctionCall, FunctionCallOutput
from .agents.llm.chat_context import MetricsReport
from .agents.voice.events import (
    ConversationItemAddedEvent,
    FunctionToolsExecutedEvent,
    FunctionToolsStartedEvent,
    ToolExecution,
)
from .events import RuntimeEvent, ToolBreak

MAX_INLINE = 200
"""Characters of a tool call or output shown on one line."""


# --- text helpers -------------------------------------------------------------------------------
def shorten(text: str, limit: int = MAX_INLINE) -> str:
    """One line of at most ``limit`` characters (only the text's start is looked at: a
    10 MB tool output costs what a short one does)."""
    head = text[: limit * 4 + 16]
    flat = " ".join(head.split())
    if len(flat) <= limit and len(head) == len(text):
        return flat
    return flat[: max(1, limit - 1)] + "…"


def format_call(name: str, arguments: str, limit: int = MAX_INLINE) -> str:
    """``get_time(timezone="Europe/Paris")``, cut to about ``limit`` characters."""
    try:
        value = json.loads(arguments) if arguments.strip() else {}
    except ValueError:
        value = arguments
    if isinstance(value, dict):
        args = ", ".join(f"{k}={json.dumps(v, ensure_ascii=False)}" for k, v in value.items())
    else:
        args = arguments.strip()
    return f"{name}({shorten(args, max(8, limit - len(name) - 2))})"


def format_tool_call(
    name: str, arguments: str, output: str | None, is_error: bool, limit: int = MAX_INLINE
) -> str:
    """``get_time(timezone="Europe/Paris") → 14:05`` (``✗`` and the error for failures)."""
    call = format_call(name, arguments, limit)
    if output is None:
        return call
    return f"{call} {'✗' if is_error else '→'} {shorten(output, limit)}"


# --- the model ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Latency:
    """An agent reply's latency report (seconds; None when not measured)."""

    e2e: float | None = None
    eou: float | None = None
    llm_ttft: float | None = None
    tts_ttfb: float | None = None
    stages: tuple[tuple[str, float], ...] = ()
    """Where e2e went, stage by stage (``MetricsReport.latency_stages``)."""

    @classmethod
    def of(cls, metrics: MetricsReport) -> Latency:
        return cls(
            e2e=metrics.e2e_latency,
            eou=metrics.end_of_turn_delay,
            llm_ttft=metrics.llm_node_ttft,
            tts_ttfb=metrics.tts_node_ttfb,
            stages=tuple((s.name, s.seconds) for s in metrics.latency_stages),
        )

    @property
    def tools(self) -> float | None:
        """Seconds the user waited on tools (and handoffs); None: the reply called none."""
        waited = [s for name, s in self.stages if name in ("tools", "handoff")]
        return sum(waited) if waited else None

    def known(self) -> bool:
        return any(v is not None for v in (self.e2e, self.eou, self.llm_ttft, self.tts_ttfb))

    def parts(self) -> list[tuple[str, float]]:
        """``[("e2e", 1.2), ("EOU", 0.5), ...]``: the measured ones, labelled."""
        labelled = (
            ("e2e", self.e2e),
            ("EOU", self.eou),
            ("LLM TTFT", self.llm_ttft),
            ("tools", self.tools),
            ("TTS TTFB", self.tts_ttfb),
        )
        return [(label, v) for label, v in labelled if v is not None]


@dataclass(frozen=True)
class Said:
    """A message of the user or the agent."""

    t: float
    role: Literal["user", "agent"]
    text: str
    interrupted: bool = False
    typed: bool = False
    """(User messages) typed, not spoken."""
    latency: Latency = field(default_factory=Latency)
    """(Agent messages) how long it took."""


ToolStatus: TypeAlias = Literal["running", "waiting", "ok", "mocked", "error", "cancelled"]
"""Where a tool call is: under way (``running``; ``waiting`` for the user: break on tool call)
or done (``ok``; ``mocked``: its result was given in the tool's place; ``error``;
``cancelled``: cut short by an interruption)."""


@dataclass(frozen=True)
class ToolCall:
    t: float
    name: str
    arguments: str
    output: str | None
    """None: no result (yet)."""
    is_error: bool = False
    duration: float | None = None
    mocked: bool = False
    cancelled: bool = False
    call_id: str = ""
    """The LLM's id of the call (empty when not known)."""
    exception: str | None = None
    """The exception the tool raised (``output`` is then the error the LLM was given)."""
    waiting: bool = False
    """(No output yet) the call waits for the user (break on tool call)."""

    @classmethod
    def pending(cls, call: FunctionCall, t: float, *, waiting: bool = False) -> ToolCall:
        """``call`` under way: running, or ``waiting`` for the user."""
        return cls(t, call.name, call.arguments, None, call_id=call.call_id, waiting=waiting)

    @classmethod
    def of(cls, execution: ToolExecution, t: float) -> ToolCall:
        """A call that ran (or was mocked, or cut short)."""
        call, output = execution.call, execution.output
        return cls(
            t,
            call.name,
            call.arguments,
            output.output,
            output.is_error,
            execution.duration,
            execution.mocked,
            execution.cancelled,
            call.call_id,
            execution.exception,
        )

    @property
    def failed(self) -> bool:
        """The call ended with an error (a cancelled one too: its output says so)."""
        return self.is_error or self.exception is not None

    @property
    def status(self) -> ToolStatus:
        if self.output is None:
            return "waiting" if self.waiting else "running"
        if self.cancelled:
            return "cancelled"
        if self.failed:
            return "error"
        return "mocked" if self.mocked else "ok"

    @property
    def error(self) -> str:
        """(A failed call) what went wrong: the exception, else the output; ``(mocked)`` when
        the error was given in the tool's place."""
        detail = self.exception or self.output or ""
        return f"{detail} (mocked)" if self.mocked else detail

    def key(self) -> tuple[str, str, str, bool]:
        """What must match for two calls to count as the same (arguments compared as JSON)."""
        return (self.name, _canonical(self.arguments), _canonical(self.output or ""), self.is_error)


@dataclass(frozen=True)
class Handoff:
    t: float
    old_agent_id: str | None
    """None: the session's first agent (announced as a handoff from no agent)."""
    new_agent_id: str


Entry: TypeAlias = Said | ToolCall | Handoff


def _canonical(text: str) -> str:
    try:
        return json.dumps(json.loads(text), sort_keys=True, separators=(",", ":"))
    except ValueError:
        return text


def _typed(metrics: MetricsReport) -> bool:
    """A user message without an end-of-turn report was typed (spoken turns, push-to-talk
    included, always carry their end-of-utterance delay)."""
    return metrics.end_of_turn_delay is None and metrics.started_speaking_at is None


def _said(t: float, msg: ChatMessage) -> Said | None:
    if msg.role not in ("user", "assistant"):
        return None
    text = msg.text_content or ""
    if msg.role == "user":
        return Said(t, "user", text, msg.interrupted, typed=_typed(msg.metrics))
    return Said(t, "agent", text, msg.interrupted, latency=Latency.of(msg.metrics))


def event_entries(ev: RuntimeEvent, t: float) -> list[Entry]:
    """What ``ev`` adds to the conversation, at ``t`` (nothing for most events)."""
    match ev:
        case ConversationItemAddedEvent(item=AgentHandoff() as item):
            return [Handoff(t, item.old_agent_id, item.new_agent_id)]
        case ConversationItemAddedEvent(item=ChatMessage() as item):
            said = _said(t, item)
            return [said] if said is not None else []
        case FunctionToolsExecutedEvent():
            return [ToolCall.of(execution, t) for execution in ev.executions]
        case _:
            return []


def pending_calls(ev: FunctionToolsStartedEvent | ToolBreak, t: float) -> list[ToolCall]:
    """The calls ``ev`` says are under way, without output: starting to run, or waiting for
    the user (a tool break; when it is resolved the call starts again, perhaps edited)."""
    match ev:
        case FunctionToolsStartedEvent():
            return [ToolCall.pending(call, t) for call in ev.function_calls]
        case ToolBreak():
            return [ToolCall.pending(ev.call, t, waiting=True)]


def history_entries(items: Sequence[ChatItem]) -> list[Entry]:
    """A session history as the conversation (``t``: each item's wall-clock time)."""
    outputs = {it.call_id: it for it in items if isinstance(it, FunctionCallOutput)}
    out: list[Entry] = []
    for it in items:
        match it:
            case ChatMessage():
                if (said := _said(it.created_at, it)) is not None:
                    out.append(said)
            case FunctionCall():
                result = outputs.get(it.call_id)
                output = result.output if result is not None else None
                is_error = result.is_error if result is not None else False
                out.append(
                    ToolCall(
                        it.created_at, it.name, it.arguments, output, is_error, call_id=it.call_id
                    )
                )
            case AgentHandoff():
                out.append(Handoff(it.created_at, it.old_agent_id, it.new_agent_id))
            case _:
                pass  # (outputs go with their calls)
    return out


@dataclass
class Turn:
    """A user message and everything the agent did until the next one (turn 0: before the
    user first spoke, e.g. a greeting)."""

    index: int
    t: float
    user: str | None
    typed: bool = False
    """The user typed the message (no audio: it has no end-of-turn report)."""
    replies: list[Said] = field(default_factory=list)
    tools: list[ToolCall] = field(default_factory=list)
    handoffs: list[str] = field(default_factory=list)

    @property
    def agent_text(self) -> str:
        return " / ".join(r.text for r in self.replies if r.text)

    @property
    def latency(self) -> Latency:
        """The reply's latency report: the first reply that measured end-to-end latency."""
        for r in self.replies:
            if r.latency.e2e is not None:
                return r.latency
        for r in self.replies:
            if r.latency.known():
                return r.latency
        return Latency()


def build_turns(entries: Iterable[Entry]) -> list[Turn]:
    turns = [Turn(index=0, t=0.0, user=None)]
    for entry in entries:
        match entry:
            case Said(role="user"):
                turns.append(Turn(len(turns), entry.t, entry.text, typed=entry.typed))
            case Said():
                turns[-1].replies.append(entry)
            case ToolCall():
                turns[-1].tools.append(entry)
            case Handoff(old_agent_id=str()):
                # (the first agent's announcement, from no agent, is not a turn's handoff)
                turns[-1].handoffs.append(entry.new_agent_id)
            case Handoff():
                pass
    first = turns[0]
    if not first.replies and not first.tools and not first.handoffs:
        turns.pop(0)
    return turns
