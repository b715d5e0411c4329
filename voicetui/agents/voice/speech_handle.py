"""``SpeechHandle``: one agent utterance (one LLM step and its audio), from creation to playout."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Generator
from typing import Any

from ..llm.chat_context import ChatItem
from .turn_latency import TurnTiming

SPEECH_PRIORITY_LOW = 0
SPEECH_PRIORITY_NORMAL = 5
SPEECH_PRIORITY_HIGH = 10


class SpeechHandle:
    def __init__(
        self,
        *,
        speech_id: str | None = None,
        allow_interruptions: bool = True,
        step_index: int = 0,
        parent: SpeechHandle | None = None,
    ) -> None:
        self._id = speech_id or f"speech_{uuid.uuid4().hex[:12]}"
        self._allow_interruptions = allow_interruptions
        self._step_index = step_index
        self._parent = parent
        loop = asyncio.get_running_loop()
        self._interrupt_fut: asyncio.Future[None] = loop.create_future()
        self._authorized: asyncio.Future[None] = loop.create_future()
        self._scheduled_fut: asyncio.Future[None] = loop.create_future()
        self._generation_fut: asyncio.Future[None] = loop.create_future()
        self._done_fut: asyncio.Future[None] = loop.create_future()
        self._chat_items: list[ChatItem] = []
        self._done_callbacks: list[Callable[[SpeechHandle], None]] = []
        self._item_added_callbacks: list[Callable[[ChatItem], None]] = []
        self._turn_timing: TurnTiming | None = None
        self._playout_gate = asyncio.Event()
        self._playout_gate.set()

    @staticmethod
    def create(allow_interruptions: bool = True) -> SpeechHandle:
        return SpeechHandle(allow_interruptions=allow_interruptions)

    def __repr__(self) -> str:
        state = "done" if self.done() else "interrupted" if self.interrupted else "pending"
        return f"SpeechHandle({self._id}, step={self._step_index}, {state})"

    @property
    def id(self) -> str:
        return self._id

    @property
    def step_index(self) -> int:
        """0 for a reply to the user, n for the reply after the n-th round of tool calls."""
        return self._step_index

    @property
    def parent(self) -> SpeechHandle | None:
        return self._parent

    @property
    def allow_interruptions(self) -> bool:
        return self._allow_interruptions

    @allow_interruptions.setter
    def allow_interruptions(self, value: bool) -> None:
        if self.interrupted and not value:
            raise RuntimeError("the speech was already interrupted")
        self._allow_interruptions = value

    @property
    def interrupted(self) -> bool:
        return self._interrupt_fut.done()

    @property
    def scheduled(self) -> bool:
        return self._scheduled_fut.done()

    @property
    def chat_items(self) -> list[ChatItem]:
        """What this speech added to the conversation (messages, tool calls and outputs)."""
        return self._chat_items

    def done(self) -> bool:
        return self._done_fut.done()

    @property
    def generation_done(self) -> bool:
        """The speech's own text and audio are out (played, or cut off) and recorded; its tools
        may still be running, and it is :meth:`done` once they have finished."""
        return self._generation_fut.done()

    def interrupt(self, *, force: bool = False) -> SpeechHandle:
        """Stop this speech. Raises if it does not allow interruptions (unless ``force``)."""
        if not force and not self._allow_interruptions:
            raise RuntimeError("this speech does not allow interruptions")
        self._cancel()
        return self

    def _cancel(self) -> None:
        if not self._done_fut.done() and not self._interrupt_fut.done():
            self._interrupt_fut.set_result(None)

    async def wait_for_playout(self) -> None:
        """Wait until the speech has been played out (or interrupted) and recorded in history,
        its tools included. Must not be awaited from a tool of this same speech (that would
        deadlock); awaiting *another* speech from a tool (``await session.generate_reply()``)
        is fine: a speech lets the next one play as soon as its own audio is out."""
        await asyncio.shield(self._done_fut)

    def __await__(self) -> Generator[Any, None, SpeechHandle]:
        async def _wait() -> SpeechHandle:
            await self.wait_for_playout()
            return self

        return _wait().__await__()

    def add_done_callback(self, callback: Callable[[SpeechHandle], None]) -> None:
        if self.done():
            asyncio.get_running_loop().call_soon(callback, self)
            return
        self._done_callbacks.append(callback)

    def remove_done_callback(self, callback: Callable[[SpeechHandle], None]) -> None:
        if callback in self._done_callbacks:
            self._done_callbacks.remove(callback)

    async def wait_if_not_interrupted(self, aws: list[asyncio.Future[Any]]) -> None:
        """Wait for all of ``aws`` unless the speech gets interrupted first."""
        fs: list[asyncio.Future[Any]] = [asyncio.gather(*aws, return_exceptions=True)]
        fs.append(self._interrupt_fut)
        await asyncio.wait(fs, return_when=asyncio.FIRST_COMPLETED)

    # --- used by AgentActivity -------------------------------------------------------------
    def _authorize_generation(self) -> None:
        if not self._authorized.done():
            self._authorized.set_result(None)

    async def _wait_for_generation(self) -> None:
        await asyncio.shield(self._generation_fut)

    def _mark_generation_done(self) -> None:
        if not self._generation_fut.done():
            self._generation_fut.set_result(None)

    def _hold(self) -> None:
        """Keep this speech's audio and text from the user for now (user voice while the
        agent is still thinking: maybe an interruption, maybe a cough)."""
        self._playout_gate.clear()

    def _release(self) -> None:
        self._playout_gate.set()

    @property
    def held(self) -> bool:
        return not self._playout_gate.is_set()

    async def _wait_until_released(self) -> None:
        if not self._playout_gate.is_set():
            await self._playout_gate.wait()

    def _mark_scheduled(self) -> None:
        if not self._scheduled_fut.done():
            self._scheduled_fut.set_result(None)

    def _add_item(self, item: ChatItem) -> None:
        self._chat_items.append(item)
        for cb in list(self._item_added_callbacks):
            cb(item)

    def _mark_done(self) -> None:
        if self._done_fut.done():
            return
        self._mark_generation_done()
        self._done_fut.set_result(None)
        if not self._authorized.done():
            self._authorized.set_result(None)
        for cb in self._done_callbacks:
            cb(self)
        self._done_callbacks.clear()
