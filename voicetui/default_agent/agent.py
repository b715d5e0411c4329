"""``DefaultAgent``: a helpful voice assistant with real local tools."""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field

from ..agents import Agent, RunContext, ToolError, function_tool
from ..agents.voice import AgentSession, CloseEvent
from .calculator import CalculatorError, evaluate, format_number
from .clock import TimeZoneError, current_time
from .notes import NotesStore
from .timers import Timer, TimerManager, describe_duration

logger = logging.getLogger("voicetui.default_agent")

INSTRUCTIONS = """\
You are a helpful voice assistant talking with the user through a speaker and a microphone.
Keep every answer short and easy to listen to: one or two plain sentences, no lists, no
markdown, no emoji, no URLs. Say numbers the way a person would say them.
Use your tools instead of guessing: get_time for the date or time (anywhere: give an IANA time
zone), calculate for any arithmetic, set_timer / cancel_timer / list_timers for timers, remember
to keep a note the user asks you to remember and recall to look notes up.
Once a tool has given you its result, answer the user with it; do not call the same tool again.
If you did not understand the user, ask them to repeat."""


class DefaultAgent(Agent):
    """``notes_path``: where notes are kept (default: ``notes.json`` in the user data dir)."""

    def __init__(
        self,
        *,
        notes_path: str | Path | None = None,
        instructions: str = INSTRUCTIONS,
        **kwargs: Any,
    ) -> None:
        super().__init__(instructions=instructions, **kwargs)
        self.notes = NotesStore(notes_path)
        self.timers = TimerManager(self._announce)
        self._sessions: dict[int, AgentSession[Any]] = {}
        self._timer_sessions: dict[int, AgentSession[Any]] = {}

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

    async def on_enter(self) -> None:
        self._watch(self.session)

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
            return f"{expression.strip()} = {format_number(evaluate(expression))}"
        except CalculatorError as e:
            raise ToolError(str(e)) from None

    @function_tool
    async def set_timer(
        self,
        ctx: RunContext[Any],
        seconds: Annotated[float, Field(description="Duration in seconds (5 minutes = 300)")],
        label: Annotated[str, Field(description="What the timer is for, e.g. tea")] = "",
    ) -> str:
        """Start a timer; you will announce it out loud when it is done."""
        try:
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
            return "there is no such timer running"
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
        return "noted"

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
