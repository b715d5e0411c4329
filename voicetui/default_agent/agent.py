"""``DefaultAgent``: a helpful voice assistant with real local tools."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field

from ..agents import Agent, RunContext, ToolError, function_tool
from ..agents.llm import (
    ChatChunk,
    ChatContext,
    ChatItem,
    ChatMessage,
    ChoiceDelta,
    FunctionCall,
    FunctionCallOutput,
    FunctionTool,
    FunctionToolCall,
    ToolChoice,
)
from ..agents.voice import AgentSession, CloseEvent, ModelSettings
from .calculator import (
    CalculatorError,
    evaluate,
    format_number,
    spoken_expression,
)
from .clock import TimeZoneError, current_time
from .direct import ToolResult, direct_answer
from .notes import NotesStore
from .router import route
from .rule_calls import rule_arguments
from .speech_text import SpeakableText
from .timers import Timer, TimerManager, describe_duration, parse_duration

logger = logging.getLogger("voicetui.default_agent")

INSTRUCTIONS = """\
You are a helpful voice assistant talking with the user through a speaker and a microphone.
Keep every answer short and easy to listen to: one or two plain sentences, no lists, no
markdown, no emoji, no URLs.
Use your tools instead of guessing: get_time for the date or time (anywhere: give an IANA time
zone), calculate for any arithmetic, set_timer / cancel_timer / list_timers for timers, remember
to keep a note the user asks you to remember and recall to look notes up.
Never state a time, a date or the result of a calculation that a tool did not give you.
Once a tool has given you its result, answer the user with it in one sentence.
You can only tell the time, calculate, run timers and keep notes: if asked to do anything else
(book, buy, call, send, look up the web or the weather), say you cannot do that.
If the request makes no sense or is missing what you need, ask the user a short question back.

Examples of tool calls:
"What time is it?" -> get_time {}
"What time is it in Tokyo?" -> get_time {"timezone": "Asia/Tokyo"}
"What's the date in New York?" -> get_time {"timezone": "America/New_York"}
"What's 15 percent of 80?" -> calculate {"expression": "15 / 100 * 80"}
"A 20 percent tip on 45 dollars?" -> calculate {"expression": "45 * 0.20"}
"What's the square root of 81?" -> calculate {"expression": "square root of 81"}
"How many seconds are in 2 hours?" -> calculate {"expression": "seconds in 2 hours"}
"Set a timer for 5 minutes for the tea." -> set_timer {"duration": "5 minutes", "label": "tea"}
"Cancel the tea timer." -> cancel_timer {"label": "tea"}
"Remember that my locker code is 4417." -> remember {"note": "My locker code is 4417."}
"What's my locker code?" -> recall {"query": "locker code"}"""


NOT_UNDERSTOOD = "Sorry, I didn't get that. Could you say it again?"


class DefaultAgent(Agent):
    """``notes_path``: where notes are kept (default: ``notes.json`` in the user data dir).
    ``direct_answers``: say a tool's result that already answers the request (the time, a
    calculation, a timer, a saved note) without a second LLM step (:mod:`.direct`).
    ``rule_calls``: make a tool call whose arguments are plainly in the user's words without
    the model (:mod:`.rule_calls`); arithmetic is always read so when the calculator can."""

    def __init__(
        self,
        *,
        notes_path: str | Path | None = None,
        instructions: str = INSTRUCTIONS,
        direct_answers: bool = True,
        rule_calls: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(instructions=instructions, **kwargs)
        self.direct_answers = direct_answers
        self.rule_calls = rule_calls
        self.notes = NotesStore(notes_path)
        self.timers = TimerManager(self._announce)
        self._sessions: dict[int, AgentSession[Any]] = {}
        self._timer_sessions: dict[int, AgentSession[Any]] = {}
        self._user_text = ""
        """The user's last words the model answered (what the tools' arguments came from)."""

    # --- timers speaking --------------------------------------------------------------------
    def _watch(self, session: AgentSession[Any]) -> None:
        """Cancel this session's timers when it closes."""
        if id(session) in self._sessions:
            return
        self._sessions[id(session)] = session

        def on_close(_: CloseEvent) -> None:
            session.off("close", on_close)
            self._sessions.pop(id(session), None)
            for timer in self.timers.active():
                if self._timer_sessions.get(timer.id) is session:
                    self._timer_sessions.pop(timer.id, None)
                    self.timers.cancel_timer(timer)

        session.on("close", on_close)

    async def _announce(self, timer: Timer) -> None:
        session = self._timer_sessions.pop(timer.id, None)
        if session is None or not session.running:
            return
        what = f"Your {timer.label} timer" if timer.label else "Your timer"
        text = f"{what} for {describe_duration(timer.duration)} is done."
        logger.info("timer %d fired: %s", timer.id, text)
        session.say(text)

    @property
    def prompt_prefix(self) -> list[ChatItem]:
        """The made-up exchange :meth:`llm_node` puts before the conversation (primed with the
        instructions by ``prewarm_models``)."""
        return list(EXAMPLES)

    async def on_enter(self) -> None:
        self._watch(self.session)

    # --- the reply ------------------------------------------------------------------------
    async def llm_node(
        self, chat_ctx: ChatContext, tools: list[FunctionTool], model_settings: ModelSettings
    ) -> AsyncIterator[ChatChunk | str]:
        """The model's reply, told which tool to call by :func:`.router.route` and made
        speakable (:class:`.speech_text.SpeakableText`)."""
        self._user_text, _, _ = _turns(chat_ctx)
        choice = model_settings.tool_choice
        if choice is None:
            choice = tool_choice_for(chat_ctx, {t.name for t in tools})
            if choice == "none" and self.direct_answers:
                answer = direct_answer(tool_results(chat_ctx), self._user_text)
                if answer is not None:  # every tool the request needed has run: say it
                    yield answer
                    return
        name = _named(choice)
        if name is not None and (self.rule_calls or name == "calculate"):
            arguments = rule_arguments(name, self._user_text)
            if arguments is not None:
                # arguments plainly in the user's words: no need for the model to write them
                # (the 0.5B model turns "square root of 169" into "169 * 169 / 2", and each
                # call it writes is an LLM step before the first audio)
                call = FunctionToolCall(name=name, arguments=json.dumps(arguments))
                yield ChatChunk(id="rule", delta=ChoiceDelta(tool_calls=[call]))
                return
        text = SpeakableText()
        said_or_called = False
        async for chunk in Agent.default.llm_node(
            self, with_examples(chat_ctx), tools, ModelSettings(tool_choice=choice)
        ):
            if isinstance(chunk, str):
                if spoken := text.feed(chunk):
                    said_or_called = True
                    yield spoken
                continue
            delta = chunk.delta
            if delta is not None and delta.tool_calls:
                said_or_called = True
            if delta is not None and delta.content:
                if spoken := text.feed(delta.content):
                    said_or_called = True
                    yield spoken
                if not delta.tool_calls and chunk.usage is None:
                    continue
                chunk = chunk.model_copy(
                    update={"delta": delta.model_copy(update={"content": None})}
                )
            yield chunk
        if rest := text.flush():
            yield rest
        elif not said_or_called:
            yield NOT_UNDERSTOOD  # the model wrote nothing speakable (JSON, or nothing at all)

    # --- tools ------------------------------------------------------------------------------
    @function_tool
    async def get_time(
        self,
        timezone: Annotated[
            str | None,
            Field(description="IANA time zone such as Europe/Paris; omit for the user's own"),
        ] = None,
    ) -> str:
        """Get the current date and time, here or in a time zone."""
        if timezone and not _place_named(timezone, self._user_text):
            timezone = None  # the small model copies a zone from its examples: the user's own
        try:
            return await asyncio.to_thread(current_time, timezone)
        except TimeZoneError as e:
            raise ToolError(str(e)) from None

    @function_tool
    async def calculate(
        self,
        expression: Annotated[
            str,
            Field(description="Arithmetic such as (12.5 * 3) / 4, 2 ** 10 or sqrt(2) * pi"),
        ],
    ) -> str:
        """Compute an arithmetic expression exactly (use it for any calculation)."""
        try:
            return f"{spoken_expression(expression)} is {format_number(evaluate(expression))}"
        except CalculatorError as e:
            raise ToolError(str(e)) from None

    @function_tool
    async def set_timer(
        self,
        ctx: RunContext[Any],
        duration: Annotated[
            str, Field(description="How long, in words: 5 minutes, 90 seconds, 1 hour 30 minutes")
        ],
        label: Annotated[str, Field(description="What the timer is for, e.g. tea")] = "",
    ) -> str:
        """Start a timer; you will announce it out loud when it is done."""
        try:
            seconds = parse_duration(duration)
            timer = self.timers.start(seconds, label)
        except ValueError as e:
            raise ToolError(str(e)) from None
        self._watch(ctx.session)
        self._timer_sessions[timer.id] = ctx.session
        return f"{timer.describe()} is set for {describe_duration(seconds)}"

    @function_tool
    async def cancel_timer(
        self,
        label: Annotated[str, Field(description="Label of the timer; empty for every timer")] = "",
    ) -> str:
        """Cancel a running timer."""
        cancelled = self.timers.cancel(label)
        for t in cancelled:
            self._timer_sessions.pop(t.id, None)
        if not cancelled:
            return "no timer is running, so there was nothing to cancel"
        return f"cancelled {', '.join(t.describe() for t in cancelled)}"

    @function_tool
    async def list_timers(self) -> str:
        """List the running timers and the time left on each."""
        timers = self.timers.active()
        if not timers:
            return "no timers are running"
        return "; ".join(f"{t.describe()}: {describe_duration(t.remaining())} left" for t in timers)

    @function_tool
    async def remember(
        self, note: Annotated[str, Field(description="What to remember, as a full sentence")]
    ) -> str:
        """Save a note the user wants remembered (kept across sessions)."""
        try:
            await asyncio.to_thread(self.notes.remember, note)
        except ValueError as e:
            raise ToolError(str(e)) from None
        return f"saved the note: {note.strip()}"

    @function_tool
    async def recall(
        self,
        query: Annotated[str, Field(description="Words to look for; empty for the latest")] = "",
    ) -> str:
        """Look up notes saved earlier with remember."""
        notes = await asyncio.to_thread(self.notes.recall, query)
        if not notes:
            return "no matching notes"
        return "\n".join(
            f"- {n.text} (saved {time.strftime('%Y-%m-%d', time.localtime(n.created))})"
            for n in notes
        )


def _turns(chat_ctx: ChatContext) -> tuple[str, list[str], list[str]]:
    """The last user message, the tools called since it, and those called in the turn
    before it."""
    items = chat_ctx.items
    last_user = -1
    for i in range(len(items) - 1, -1, -1):
        item = items[i]
        if isinstance(item, ChatMessage) and item.role == "user":
            last_user = i
            break
    if last_user < 0:
        return "", [], []
    user_item = items[last_user]
    assert isinstance(user_item, ChatMessage)
    called = [it.name for it in items[last_user + 1 :] if isinstance(it, FunctionCall)]
    before: list[str] = []
    for it in reversed(items[:last_user]):
        if isinstance(it, ChatMessage) and it.role == "user":
            break
        if isinstance(it, FunctionCall):
            before.insert(0, it.name)
    return user_item.text_content or "", called, before


def tool_results(chat_ctx: ChatContext) -> list[ToolResult]:
    """The results of the tools called since the user's last message, in order."""
    items = chat_ctx.items
    results: list[ToolResult] = []
    for item in reversed(items):
        if isinstance(item, ChatMessage) and item.role == "user":
            break
        if isinstance(item, FunctionCallOutput):
            results.insert(0, ToolResult(item.name, item.output, item.is_error))
    return results


def _named(choice: ToolChoice | None) -> str | None:
    if isinstance(choice, dict):
        name = choice.get("function", {}).get("name")
        return name if isinstance(name, str) else None
    return None


def tool_choice_for(chat_ctx: ChatContext, available: set[str]) -> ToolChoice:
    """The next tool the user's request needs (as a named ``tool_choice``), or ``"none"`` when
    it needs no tool or every one it needs has run in this turn."""
    text, called, before = _turns(chat_ctx)
    needed = [t for t in route(text, tuple(before)).tools if t in available]
    remaining = list(needed)
    for name in called:
        if name in remaining:
            remaining.remove(name)
    if remaining:
        return {"type": "function", "function": {"name": remaining[0]}}
    return "none"


def _examples() -> list[ChatItem]:
    """A short made-up conversation shown to the model before the real one, in the model's own
    tool format: a tool call, its result and the answer that uses it, a question answered
    without a tool, a request it cannot do and one it did not understand. Without it, the 0.5B
    model, right after a tool result, calls the tool again or says something unrelated
    (measured in docs/benchmarks.md). Fixed text: the prompt prefix stays cached."""
    ctx = ChatContext()
    ctx.add_message(role="user", content="What is 2 plus 2?")
    ctx.append(FunctionCall(call_id="example_1", name="calculate", arguments=_EXAMPLE_ARGS))
    ctx.append(
        FunctionCallOutput(
            call_id="example_1", name="calculate", output="2 plus 2 is 4", is_error=False
        )
    )
    ctx.add_message(role="assistant", content="2 plus 2 is 4.")
    ctx.add_message(role="user", content="Who wrote Hamlet?")
    ctx.add_message(role="assistant", content="William Shakespeare wrote Hamlet.")
    ctx.add_message(role="user", content="Can you order me a pizza?")
    ctx.add_message(
        role="assistant",
        content="Sorry, I can't order things. I can tell the time, calculate, run timers and "
        "keep notes.",
    )
    ctx.add_message(role="user", content="Blorp the flibber.")
    ctx.add_message(role="assistant", content="Sorry, I didn't get that. Could you say it again?")
    return ctx.items


_EXAMPLE_ARGS = '{"expression": "2 + 2"}'
EXAMPLES: list[ChatItem] = _examples()


def with_examples(chat_ctx: ChatContext) -> ChatContext:
    """``chat_ctx`` with :data:`EXAMPLES` after its leading instructions."""
    items = chat_ctx.items
    head = 0
    while head < len(items) and isinstance(items[head], ChatMessage):
        item = items[head]
        assert isinstance(item, ChatMessage)
        if item.role not in ("system", "developer"):
            break
        head += 1
    return ChatContext([*items[:head], *EXAMPLES, *items[head:]])


def _place_named(timezone: str, user_text: str) -> bool:
    """Whether the user asked about another place at all ("in Tokyo", "Paris time", "UTC"): a
    zone argument for a question about here is dropped. Without the user's words (a tool run by
    hand), the argument stands."""
    if not user_text:
        return True
    words = user_text.casefold()
    city = timezone.rsplit("/", 1)[-1].replace("_", " ").casefold()
    return (
        city in words
        or re.search(r"\b(?:in|at|for)\s+[a-z]", words) is not None
        or any(z in words.split() for z in ("utc", "gmt"))
    )
