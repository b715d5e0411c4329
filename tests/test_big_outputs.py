"""A tool returning megabytes: every view shows a bounded part ("Show all" pages the rest), and
what each LLM request carries is bounded (tool outputs cut, the history windowed) while the
session's history keeps everything."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest
from textual.widgets import Button, Static

from tests import fake_runtime as fr
from tests.fake_runtime import FakeRuntime, settle
from voicetui.agents import APIConnectOptions
from voicetui.agents.llm import (
    LLM,
    ChatChunk,
    ChatContext,
    ChoiceDelta,
    FunctionCall,
    FunctionCallOutput,
    FunctionTool,
    LLMStream,
    ToolChoice,
)
from voicetui.agents.llm.history import HistoryLimits, request_context
from voicetui.agents.types import DEFAULT_API_CONNECT_OPTIONS
from voicetui.config import ConfigError, Settings, load_settings
from voicetui.conversation import format_tool_call
from voicetui.plugins.selection import ModelSelection, build_models, resolve
from voicetui.recording.transcript import TranscriptRenderer
from voicetui.tui.app import VoiceTUIApp
from voicetui.tui.screens.pager import PAGE_CHARS, PagerScreen
from voicetui.tui.widgets.conversation import ConversationView
from voicetui.tui.widgets.tools import VIEW_CHARS, ToolsPanel

BIG = ("0123456789abcdef" * 64 + "\n") * 10_000  # ~10 MB


class _Capturing(LLM):
    """Answers "ok" and keeps what each request carried."""

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[ChatContext] = []

    def chat(
        self,
        *,
        chat_ctx: ChatContext,
        tools: Sequence[FunctionTool] | None = None,
        tool_choice: ToolChoice | None = None,
        conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS,
        extra: dict[str, Any] | None = None,
    ) -> LLMStream:
        return _CapturingStream(self, chat_ctx=chat_ctx, tools=tools, conn_options=conn_options)


class _CapturingStream(LLMStream):
    async def _run(self) -> None:
        assert isinstance(self._llm, _Capturing)
        self._llm.sent.append(self._chat_ctx)
        self._emit(ChatChunk(id=self._request_id, delta=ChoiceDelta(content="ok")))


def _history(turns: int, *, output: str = "fine") -> ChatContext:
    ctx = ChatContext()
    ctx.add_message(role="system", content="be brief")
    for i in range(turns):
        ctx.add_message(role="user", content=f"question {i}")
        ctx.append(FunctionCall(call_id=f"c{i}", name="look", arguments="{}"))
        ctx.append(FunctionCallOutput(call_id=f"c{i}", name="look", output=output, is_error=False))
        ctx.add_message(role="assistant", content=f"answer {i}")
    return ctx


async def test_requests_carry_a_bounded_history() -> None:
    llm = _Capturing()
    history = _history(300, output=BIG[:50_000])
    text, _ = await llm.chat(chat_ctx=history).collect()
    assert text == "ok"
    (sent,) = llm.sent
    assert len(history.items) == 1 + 4 * 300  # the session's history is untouched
    assert len(sent.items) <= 1 + 100
    assert sent.items[0].type == "message" and sent.items[0].role == "system"  # type: ignore[union-attr]
    first = sent.items[1]
    assert first.type == "message" and first.role == "user"  # type: ignore[union-attr]
    assert sent.items[-1] is history.items[-1]
    outputs = [it for it in sent.items if isinstance(it, FunctionCallOutput)]
    assert all(len(o.output) < 16_100 and "more characters cut" in o.output for o in outputs)
    calls = {it.call_id for it in sent.items if isinstance(it, FunctionCall)}
    assert {o.call_id for o in outputs} == calls  # no output without its call


def test_within_limits_the_history_is_sent_as_is() -> None:
    history = _history(3)
    assert request_context(history, HistoryLimits()) is history
    assert len(request_context(_history(300), HistoryLimits(max_items=None)).items) == 1201


def test_the_limits_are_settings() -> None:
    sel = ModelSelection(llm="openai", llm_history_items=10, llm_tool_output_chars=500)
    models = build_models(resolve(sel))
    assert models.llm is not None
    assert models.llm.history_limits == HistoryLimits(10, 500)
    with pytest.raises(ConfigError):
        load_settings({"models.llm_history_items": 0})
    assert Settings().models.llm_history_items == 100


def test_headless_and_transcript_lines_are_bounded() -> None:
    assert len(format_tool_call("look", "{}", BIG, False)) < 400
    executed = fr.tools_executed(fr.execution(fr.call("look"), BIG))
    md = TranscriptRenderer().render_event(1.0, executed)
    assert len(md) < 2_500 and "more characters cut" in md


async def test_the_tools_tab_shows_a_part_and_pages_the_rest() -> None:
    rt = FakeRuntime()
    app = VoiceTUIApp(rt, clock=lambda: fr.T0, bridge_interval=0)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        call = fr.call("dump", "c1")
        rt.emit(fr.tools_started(call), fr.tools_executed(fr.execution(call, BIG, 0.5)))
        await settle(pilot)
        line = app.query_one(ConversationView).plain_lines()[-1]
        assert len(line) < 300
        app.show_tab("tools-tab")
        await settle(pilot)
        detail = app.query_one("#tools-detail", Static).render()
        assert len(str(detail)) < VIEW_CHARS + 2_000
        button = app.query_one("#tools-show-all", Button)
        assert not button.disabled
        panel = app.query_one(ToolsPanel)
        panel.post_message(ToolsPanel.ShowAllRequested(panel.records["c1"]))
        await settle(pilot)
        pager = app.screen
        assert isinstance(pager, PagerScreen)
        assert pager.pages > 1000 and pager.page_text() == pager.text[:PAGE_CHARS]
        await pilot.press("n")
        await settle(pilot)
        assert pager.page == 1 and pager.page_text() == pager.text[PAGE_CHARS : 2 * PAGE_CHARS]
        await pilot.press("escape")
        await settle(pilot)
        assert not isinstance(app.screen, PagerScreen)
