"""Operations of the controller on its session: break-on-tool-call, interrupting without
hanging, checking tool arguments, coalescing audio levels."""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import Callable
from typing import Any, Literal

from ..agents.llm import FunctionCall
from ..agents.voice import (
    AgentSession,
    MockToolError,
    MockToolResult,
    RunTool,
    ToolCallDecision,
    ToolExecution,
)
from .api import AudioLevels, NoticeLevel, ToolBreak, ToolBreakResolution

logger = logging.getLogger("voicetui.runtime")


def check_arguments(arguments: str) -> None:
    """Raise ValueError unless ``arguments`` is a JSON object (or empty)."""
    try:
        data = json.loads(arguments) if arguments.strip() else {}
    except json.JSONDecodeError as e:
        raise ValueError(f"the arguments are not valid JSON: {e.msg} at char {e.pos}") from None
    if not isinstance(data, dict):
        raise ValueError("the arguments must be a JSON object")


async def rerun_tool(session: AgentSession[Any], name: str, arguments: str) -> ToolExecution:
    """Run the current agent's tool ``name`` again with ``arguments`` (a JSON object), outside
    any turn; ValueError for arguments that are not a JSON object or a tool it does not have."""
    check_arguments(arguments)
    agent = session.current_agent
    if name not in {t.name for t in agent.tools}:
        raise ValueError(f"{agent.label} has no tool {name!r}")
    return await session.rerun_tool(name, arguments)


class ToolBreaks:
    """Break-on-tool-call: :meth:`intercept` is the session's ``tool_call_interceptor``; while
    enabled, each call emits a :class:`ToolBreak` and waits for :meth:`resolve`."""

    def __init__(
        self, emit: Callable[[ToolBreak], None], notice: Callable[[NoticeLevel, str], None]
    ) -> None:
        self._emit = emit
        self._notice = notice
        self.enabled = False
        self._pending: dict[str, asyncio.Future[ToolBreakResolution]] = {}
        self.closing = False

    @property
    def pending(self) -> list[str]:
        return list(self._pending)

    def set_enabled(self, enabled: bool) -> None:
        self.enabled = enabled
        if not enabled:  # paused calls go on as the LLM asked
            for fut in list(self._pending.values()):
                if not fut.done():
                    fut.set_result(ToolBreakResolution("run"))

    def cancel_all(self) -> None:
        self.closing = True
        for fut in self._pending.values():
            fut.cancel()

    async def intercept(self, call: FunctionCall) -> ToolCallDecision:
        if not self.enabled:
            return RunTool()
        break_id = f"break_{uuid.uuid4().hex[:10]}"
        fut: asyncio.Future[ToolBreakResolution] = asyncio.get_running_loop().create_future()
        self._pending[break_id] = fut
        self._emit(ToolBreak(break_id=break_id, call=call))
        try:
            resolution = await fut
        except asyncio.CancelledError:
            if not self.closing:
                self._notice("info", f"the paused call to {call.name} was dropped")
            raise
        finally:
            self._pending.pop(break_id, None)
        if resolution.action == "mock":
            return MockToolResult(resolution.output)
        if resolution.action == "error":
            return MockToolError(resolution.output or "the tool failed")
        return RunTool(resolution.arguments)

    def resolve(self, break_id: str, resolution: ToolBreakResolution) -> None:
        fut = self._pending.get(break_id)
        if fut is None or fut.done():
            raise RuntimeError(f"no tool call is paused as {break_id} (resolved or dropped)")
        if resolution.action not in ("run", "mock", "error"):
            raise ValueError(f"unknown action {resolution.action!r}: use run, mock or error")
        if resolution.action == "run" and resolution.arguments is not None:
            check_arguments(resolution.arguments)
        fut.set_result(resolution)


INTERRUPT_WAIT = 3.0


async def interrupt_quietly(session: AgentSession[Any]) -> None:
    """Interrupt the agent and wait (at most ``INTERRUPT_WAIT`` s) until what it said is
    recorded."""
    fut = session.interrupt()
    try:
        await asyncio.wait_for(asyncio.shield(fut), INTERRUPT_WAIT)
    except TimeoutError:
        logger.warning("the interrupted speech took more than %.0f s to stop", INTERRUPT_WAIT)


class LevelsCoalescer:
    """Audio levels reported per direction (~20 Hz each) become one :class:`AudioLevels` per
    ``interval`` at most, with the latest values (call on the loop). One that would repeat the
    last sent exactly is not sent: a digitally silent or muted mic and an idle speaker would
    otherwise wake the UI 20 times a second to show the same meters."""

    def __init__(self, emit: Callable[[AudioLevels], None], interval: float) -> None:
        self._emit = emit
        self._interval = interval
        self._values = [-120.0, -120.0, -120.0, -120.0]
        self._echo_cancelling = False
        self._erle_db: float | None = None
        self._handle: asyncio.TimerHandle | None = None
        self._last = float("-inf")
        self._sent: tuple[float, float, float, float, bool, float | None] | None = None

    def report(
        self,
        direction: Literal["input", "output"],
        rms: float,
        peak: float,
        *,
        echo_cancelling: bool = False,
        erle_db: float | None = None,
    ) -> None:
        i = 0 if direction == "input" else 2
        self._values[i], self._values[i + 1] = rms, peak
        if direction == "input":
            self._echo_cancelling, self._erle_db = echo_cancelling, erle_db
        if self._handle is None and self._current() != self._sent:  # (else nothing to wake for)
            loop = asyncio.get_running_loop()
            delay = max(0.0, self._last + self._interval - loop.time())
            self._handle = loop.call_later(delay, self._flush)

    def _flush(self) -> None:
        self._handle = None
        self._last = asyncio.get_running_loop().time()
        sent = self._current()
        if sent == self._sent:
            return
        self._sent = sent
        in_rms, in_peak, out_rms, out_peak, echo_cancelling, erle_db = sent
        self._emit(
            AudioLevels(
                input_dbfs=in_rms,
                input_peak_dbfs=in_peak,
                output_dbfs=out_rms,
                output_peak_dbfs=out_peak,
                echo_cancelling=echo_cancelling,
                erle_db=erle_db,
            )
        )

    def _current(self) -> tuple[float, float, float, float, bool, float | None]:
        """What an update would show now (compared with what was sent last)."""
        in_rms, in_peak, out_rms, out_peak = self._values
        return (in_rms, in_peak, out_rms, out_peak, self._echo_cancelling, self._erle_db)

    def cancel(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
