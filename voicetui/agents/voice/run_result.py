"""``RunResult``: what one ``session.run(user_input=...)`` produced, with an ``expect`` cursor for
tests (``result.expect.next_event().is_function_call(name="get_time")``)."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, TypeAlias

from ..llm import AgentHandoff, ChatItem, ChatMessage, ChatRole, FunctionCall, FunctionCallOutput
from .speech_handle import SpeechHandle

if TYPE_CHECKING:
    from .agent import Agent
    from .agent_session import AgentSession


@dataclass
class ChatMessageEvent:
    item: ChatMessage
    type: Literal["message"] = "message"


@dataclass
class FunctionCallEvent:
    item: FunctionCall
    type: Literal["function_call"] = "function_call"


@dataclass
class FunctionCallOutputEvent:
    item: FunctionCallOutput
    type: Literal["function_call_output"] = "function_call_output"


@dataclass
class AgentHandoffEvent:
    item: AgentHandoff
    old_agent: Agent | None
    new_agent: Agent
    type: Literal["agent_handoff"] = "agent_handoff"


RunEvent: TypeAlias = (
    ChatMessageEvent | FunctionCallEvent | FunctionCallOutputEvent | AgentHandoffEvent
)


def _describe(ev: RunEvent) -> str:
    item = ev.item
    if isinstance(item, ChatMessage):
        return f"message(role={item.role!r}, text={item.text_content!r}, interrupted={item.interrupted})"
    if isinstance(item, FunctionCall):
        return f"function_call(name={item.name!r}, arguments={item.arguments})"
    if isinstance(item, FunctionCallOutput):
        return f"function_call_output(name={item.name!r}, output={item.output!r}, is_error={item.is_error})"
    return f"agent_handoff({item.old_agent_id!r} -> {item.new_agent_id!r})"


class RunResult:
    def __init__(self, *, user_input: str) -> None:
        self._user_input = user_input
        self._events: list[RunEvent] = []
        self._handles: list[SpeechHandle] = []
        self._tasks: list[asyncio.Future[Any]] = []
        self._done = False
        self._expect: RunAssert | None = None
        self._error: BaseException | None = None

    @property
    def user_input(self) -> str:
        return self._user_input

    @property
    def events(self) -> list[RunEvent]:
        return list(self._events)

    @property
    def expect(self) -> RunAssert:
        """The run's assertion cursor (one per result: ``next_event()`` calls advance it)."""
        if self._expect is None:
            self._expect = RunAssert(self)
        return self._expect

    @property
    def final_output(self) -> str | None:
        """The text of the last assistant message of the run."""
        for ev in reversed(self._events):
            if isinstance(ev.item, ChatMessage) and ev.item.role == "assistant":
                return ev.item.text_content
        return None

    def done(self) -> bool:
        return self._done

    @property
    def error(self) -> BaseException | None:
        """Why the run failed (a model failed for good), or None. ``session.run`` raises it."""
        return self._error

    def __repr__(self) -> str:
        return f"RunResult({len(self._events)} events)"

    # --- fed by the session ---------------------------------------------------------------
    def _on_item(self, item: ChatItem) -> None:
        if isinstance(item, ChatMessage):
            self._events.append(ChatMessageEvent(item))
        elif isinstance(item, FunctionCall):
            self._events.append(FunctionCallEvent(item))
        elif isinstance(item, FunctionCallOutput):
            self._events.append(FunctionCallOutputEvent(item))

    def _on_handoff(self, item: AgentHandoff, old: Agent | None, new: Agent) -> None:
        self._events.append(AgentHandoffEvent(item, old, new))

    def _on_speech_failed(self, handle: SpeechHandle, error: BaseException) -> None:
        if handle in self._handles and self._error is None:
            self._error = error

    def _watch_handle(self, handle: SpeechHandle) -> None:
        self._handles.append(handle)

    def _watch_task(self, task: asyncio.Future[Any] | None) -> None:
        if task is not None:
            self._tasks.append(task)

    async def _settle(self, session: AgentSession[Any]) -> None:
        """Wait until every speech, handoff and on_enter started during the run is over."""
        while True:
            pending: list[asyncio.Future[Any]] = [
                asyncio.ensure_future(h.wait_for_playout()) for h in self._handles if not h.done()
            ]
            pending += [t for t in self._tasks if not t.done()]
            upd = session._agent_update_task
            if upd is not None and not upd.done():
                pending.append(upd)
            if not pending:
                # let callbacks scheduled by the last completions run, then check again
                for _ in range(3):
                    await asyncio.sleep(0)
                if (
                    all(h.done() for h in self._handles)
                    and all(t.done() for t in self._tasks)
                    and (session._agent_update_task is None or session._agent_update_task.done())
                ):
                    break
                continue
            await asyncio.wait(pending)
        self._done = True


class RunAssert:
    """A cursor over a run's events. Each ``next_event()`` moves forward one event."""

    def __init__(self, result: RunResult) -> None:
        self._result = result
        self._index = 0

    @property
    def _events(self) -> list[RunEvent]:
        return self._result._events

    def _fail(self, message: str, at: int | None = None) -> AssertionError:
        lines = []
        for i, ev in enumerate(self._events):
            marker = ">>" if i == at else "  "
            lines.append(f"{marker} [{i}] {_describe(ev)}")
        listing = "\n".join(lines) or "   (no events)"
        return AssertionError(f"{message}\nrun events for {self._result.user_input!r}:\n{listing}")

    def __getitem__(self, index: int) -> EventAssert:
        if not -len(self._events) <= index < len(self._events):
            raise self._fail(f"no event at index {index}")
        i = index % len(self._events)
        return EventAssert(self, self._events[i], i)

    def next_event(
        self,
        *,
        type: Literal["message", "function_call", "function_call_output", "agent_handoff"]
        | None = None,
    ) -> EventAssert:
        while True:
            if self._index >= len(self._events):
                raise self._fail(
                    f"expected another event{f' of type {type!r}' if type else ''}, but the run has no more"
                )
            ev = self._events[self._index]
            i = self._index
            self._index += 1
            if type is None or ev.type == type:
                return EventAssert(self, ev, i)

    def skip_next(self, count: int = 1) -> RunAssert:
        if self._index + count > len(self._events):
            raise self._fail(
                f"cannot skip {count} event(s): only {len(self._events) - self._index} left"
            )
        self._index += count
        return self

    def no_more_events(self) -> None:
        if self._index < len(self._events):
            raise self._fail("expected no more events", at=self._index)

    def contains_function_call(
        self, *, name: str | None = None, arguments: dict[str, Any] | None = None
    ) -> FunctionCallEvent:
        for ev in self._events:
            if isinstance(ev, FunctionCallEvent) and _call_matches(ev.item, name, arguments):
                return ev
        raise self._fail(f"no function call matching name={name!r} arguments={arguments!r}")

    def contains_message(self, *, role: ChatRole | None = None) -> ChatMessageEvent:
        for ev in self._events:
            if isinstance(ev, ChatMessageEvent) and (role is None or ev.item.role == role):
                return ev
        raise self._fail(f"no message with role={role!r}")


def _call_matches(call: FunctionCall, name: str | None, arguments: dict[str, Any] | None) -> bool:
    if name is not None and call.name != name:
        return False
    if arguments is not None:
        try:
            actual = json.loads(call.arguments or "{}")
        except json.JSONDecodeError:
            return False
        if not isinstance(actual, dict):
            return False
        return all(actual.get(k) == v for k, v in arguments.items())
    return True


class EventAssert:
    def __init__(self, parent: RunAssert, event: RunEvent, index: int) -> None:
        self._parent = parent
        self._event = event
        self._index = index

    def event(self) -> RunEvent:
        return self._event

    def _wrong(self, expected: str) -> AssertionError:
        return self._parent._fail(f"expected {expected} at [{self._index}]", at=self._index)

    def is_message(self, *, role: ChatRole | None = None) -> ChatMessageEvent:
        ev = self._event
        if not isinstance(ev, ChatMessageEvent) or (role is not None and ev.item.role != role):
            raise self._wrong(f"a message{f' with role={role!r}' if role else ''}")
        return ev

    def is_function_call(
        self, *, name: str | None = None, arguments: dict[str, Any] | None = None
    ) -> FunctionCallEvent:
        ev = self._event
        if not isinstance(ev, FunctionCallEvent) or not _call_matches(ev.item, name, arguments):
            raise self._wrong(f"a function call with name={name!r} arguments={arguments!r}")
        return ev

    def is_function_call_output(
        self, *, output: str | None = None, is_error: bool | None = None
    ) -> FunctionCallOutputEvent:
        ev = self._event
        ok = isinstance(ev, FunctionCallOutputEvent)
        if ok and output is not None and ev.item.output != output:  # type: ignore[union-attr]
            ok = False
        if ok and is_error is not None and ev.item.is_error != is_error:  # type: ignore[union-attr]
            ok = False
        if not ok:
            raise self._wrong(f"a function call output (output={output!r}, is_error={is_error!r})")
        return ev  # type: ignore[return-value]

    def is_agent_handoff(self, *, new_agent_type: type | None = None) -> AgentHandoffEvent:
        ev = self._event
        if not isinstance(ev, AgentHandoffEvent) or (
            new_agent_type is not None and not isinstance(ev.new_agent, new_agent_type)
        ):
            raise self._wrong(
                f"an agent handoff{f' to {new_agent_type.__name__}' if new_agent_type else ''}"
            )
        return ev
