"""A plain ``def`` tool runs in a worker thread: the session's loop goes on while it runs."""

from __future__ import annotations

import asyncio
import threading

from voicetui.agents import Agent, function_tool
from voicetui.agents.llm import find_function_tools


class Blocking(Agent):
    def __init__(self) -> None:
        super().__init__(instructions="x")
        self.released = threading.Event()
        self.thread: int | None = None

    @function_tool
    def wait_for_the_loop(self) -> str:
        """Blocks until the event loop sets the event (or 10 s)."""
        self.thread = threading.get_ident()
        return "released" if self.released.wait(timeout=10) else "the loop was blocked"

    @function_tool
    async def on_the_loop(self) -> str:
        """Async: runs on the loop."""
        self.thread = threading.get_ident()
        return "async"


async def test_a_sync_tool_does_not_block_the_loop() -> None:
    agent = Blocking()
    tools = {t.name: t for t in find_function_tools(agent)}
    asyncio.get_running_loop().call_later(0.05, agent.released.set)  # needs the loop to run
    assert await tools["wait_for_the_loop"].invoke(None, {}) == "released"
    assert agent.thread != threading.get_ident()
    assert await tools["on_the_loop"].invoke(None, {}) == "async"
    assert agent.thread == threading.get_ident()
