"""The tools panel: every tool call with its status and duration; the selected one in full
(arguments and output as pretty JSON); re-run with edited arguments; break on tool call."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from rich.console import Group, RenderableType
from rich.json import JSON
from rich.style import Style
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.widgets import Button, Label, OptionList, Static, Switch
from textual.widgets.option_list import Option

from ...agents.llm.history import cut_output
from ...conversation import ToolCall, ToolStatus, format_call, shorten
from ..format import format_duration, parse_json
from .styling import CachedComponentStyles

ICONS: dict[ToolStatus, tuple[str, str]] = {
    "running": ("…", "dim"),
    "waiting": ("⏸", "warn"),
    "ok": ("✓", "ok"),
    "mocked": ("✓", "warn"),
    "error": ("✗", "bad"),
    "cancelled": ("⏹", "warn"),
}


@dataclass(slots=True)
class ToolRecord:
    key: str
    call: ToolCall
    """The call as the conversation model has it (running, waiting or done)."""
    rerun: bool = False

    @property
    def state(self) -> ToolStatus:
        return self.call.status

    @property
    def mocked(self) -> bool:
        """The result or error was given in the tool's place (break on tool call)."""
        return self.call.mocked

    @property
    def duration(self) -> float | None:
        return self.call.duration

    @property
    def output(self) -> str | None:
        return self.call.output

    @property
    def exception(self) -> str | None:
        return self.call.exception


VIEW_CHARS = 4_000
"""Longer arguments, outputs and exceptions are cut in the panel ("Show all" pages them)."""


def json_block(text: str) -> RenderableType:
    """Pretty JSON, or the text as is; cut to :data:`VIEW_CHARS` (never parsed then)."""
    if len(text) > VIEW_CHARS:
        return Text(cut_output(text, VIEW_CHARS))
    value = parse_json(text)
    if isinstance(value, dict | list):
        return JSON.from_data(value, indent=2, ensure_ascii=False)
    return Text(text)


def full_text(record: ToolRecord) -> str:
    """Everything about a call, for the pager."""
    parts = [f"arguments:\n{record.call.arguments}"]
    if record.exception:
        parts.append(f"exception:\n{record.exception}")
    if record.output is not None:
        parts.append(f"output (what the LLM got):\n{record.output}")
    return "\n\n".join(parts)


def is_long(record: ToolRecord) -> bool:
    return any(
        len(text) > VIEW_CHARS
        for text in (record.call.arguments, record.exception or "", record.output or "")
    )


class ToolsPanel(CachedComponentStyles, Vertical):
    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "tools--ok",
        "tools--warn",
        "tools--bad",
        "tools--dim",
        "tools--head",
    }

    DEFAULT_CSS = """
    ToolsPanel {
        & > .tools--ok { color: $success; }
        & > .tools--warn { color: $warning; }
        & > .tools--bad { color: $error; }
        & > .tools--dim { color: $text-muted; }
        & > .tools--head { color: $vt-tool; text-style: bold; }
        #tools-bar { height: 3; padding: 0 1; }
        #tools-bar Label { padding: 1 1 0 0; }
        #tools-bar Switch { margin-right: 2; }
        #tools-show-all { margin: 1 0 0 1; }
        #tools-main { height: 1fr; }
        #tools-list { width: 2fr; min-width: 24; height: 1fr; }
        #tools-detail-scroll { width: 3fr; height: 1fr; padding: 0 1; background: $surface; }
    }
    """

    class RerunRequested(Message):
        def __init__(self, record: ToolRecord) -> None:
            super().__init__()
            self.record = record

    class ShowAllRequested(Message):
        """Page through the selected call's whole arguments, exception and output."""

        def __init__(self, record: ToolRecord) -> None:
            super().__init__()
            self.record = record

    class BreakToggled(Message):
        def __init__(self, enabled: bool) -> None:
            super().__init__()
            self.enabled = enabled

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.records: dict[str, ToolRecord] = {}
        self._order: list[str] = []
        self._selected: str | None = None
        self._reruns = 0
        self.unavailable: str | None = None
        """Why breaks and re-runs cannot be had (a LiveKit agent's tools), or None."""

    def make_unavailable(self, reason: str) -> None:
        """Grey out break-on-tool-call and re-run, saying why."""
        self.unavailable = reason
        switch = self.query_one("#tools-break", Switch)
        switch.disabled = True
        switch.tooltip = reason
        rerun = self.query_one("#tools-rerun", Button)
        rerun.disabled = True
        rerun.tooltip = reason
        self.query_one("#tools-bar Label", Label).update(f"Break on tool call: {reason}")

    def compose(self) -> ComposeResult:
        with Horizontal(id="tools-bar"):
            yield Label("Break on tool call (F8)")
            yield Switch(id="tools-break")
            yield Button("Re-run edited…", id="tools-rerun", disabled=True)
            yield Button("Show all", id="tools-show-all", disabled=True, compact=True)
        with Horizontal(id="tools-main"):
            yield OptionList(id="tools-list")
            with VerticalScroll(id="tools-detail-scroll"):
                yield Static("No tool calls yet.", id="tools-detail")

    def _styles(self) -> dict[str, Style]:
        return {
            n: self.component_style(f"tools--{n}") for n in ("ok", "warn", "bad", "dim", "head")
        }

    def _list(self) -> OptionList:
        return self.query_one("#tools-list", OptionList)

    # --- updates (UI thread) ----------------------------------------------------------------
    def show_call(self, call: ToolCall) -> ToolRecord:
        """A call of the conversation, under way (running, waiting: its arguments may be edited
        at a break) or done."""
        record = self.records.get(call.call_id)
        if record is None:
            record = ToolRecord(key=call.call_id, call=call)
            self._add(record)
        else:
            record.call = call
            self._changed(record)
        return record

    def show_rerun(self, call: ToolCall) -> ToolRecord:
        """A re-run's result: a record of its own, selected."""
        self._reruns += 1
        record = ToolRecord(key=f"rerun-{self._reruns}", call=call, rerun=True)
        self._add(record)
        self.select(record.key)
        return record

    def set_break(self, enabled: bool) -> None:
        switch = self.query_one("#tools-break", Switch)
        if switch.value != enabled:
            with switch.prevent(Switch.Changed):
                switch.value = enabled

    def select(self, key: str) -> None:
        option_list = self._list()
        try:
            option_list.highlighted = option_list.get_option_index(key)
        except LookupError:
            return
        self._show(key)

    def clear(self) -> None:
        self.records.clear()
        self._order.clear()
        self._selected = None
        self._list().clear_options()
        self.query_one("#tools-detail", Static).update("No tool calls yet.")
        self.query_one("#tools-rerun", Button).disabled = True
        self.query_one("#tools-show-all", Button).disabled = True

    # --- internals --------------------------------------------------------------------------
    def _add(self, record: ToolRecord) -> None:
        self.records[record.key] = record
        self._order.append(record.key)
        option_list = self._list()
        option_list.add_option(Option(self._prompt(record), id=record.key))
        if self._selected is None:
            option_list.highlighted = 0
            self._show(record.key)

    def _changed(self, record: ToolRecord) -> None:
        self._list().replace_option_prompt(record.key, self._prompt(record))
        if self._selected == record.key:
            self._show(record.key)

    def _prompt(self, record: ToolRecord) -> Text:
        styles = self._styles()
        icon, style = ICONS[record.state]
        text = Text(no_wrap=True, overflow="ellipsis")
        text.append(f"{icon} ", style=styles[style])
        if record.rerun:
            text.append("↻ ", style=styles["warn"])
        text.append(record.call.name, style="bold")
        if record.mocked:
            text.append(" (mocked)", style=styles["warn"])
        if record.duration is not None:
            text.append(f"  {format_duration(record.duration)}", style=styles["dim"])
        text.append(f"  {shorten(record.call.arguments, 40)}", style=styles["dim"])
        return text

    def detail(self, record: ToolRecord) -> RenderableType:
        styles = self._styles()
        icon, style = ICONS[record.state]
        head = Text()
        head.append(f"{icon} ", style=styles[style])
        head.append(format_call(record.call.name, record.call.arguments, limit=60))
        head.stylize(styles["head"], 2)
        meta = Text(style=styles["dim"])
        meta.append(f"call {record.call.call_id} · {record.state}")
        if record.mocked and record.state != "mocked":
            meta.append(" (mocked)")
        if record.duration is not None:
            meta.append(f" · {format_duration(record.duration)}")
        if record.rerun:
            meta.append(" · re-run")
        parts: list[RenderableType] = [head, meta, Text(""), Text("arguments", style="bold")]
        parts.append(json_block(record.call.arguments or "{}"))
        parts.append(Text(""))
        if record.exception:
            parts.append(Text("exception", style="bold"))
            parts.append(Text(cut_output(record.exception, VIEW_CHARS), style=styles["bad"]))
            parts.append(Text(""))
        if record.output is not None:
            parts.append(Text("output (what the LLM got)", style="bold"))
            parts.append(json_block(record.output))
        elif record.state == "waiting":
            parts.append(Text("waiting for you (break on tool call)", style=styles["warn"]))
        else:
            parts.append(Text("running…", style=styles["dim"]))
        return Group(*parts)

    def _show(self, key: str) -> None:
        record = self.records.get(key)
        if record is None:
            return
        self._selected = key
        self.query_one("#tools-detail", Static).update(self.detail(record))
        self.query_one("#tools-rerun", Button).disabled = self.unavailable is not None
        self.query_one("#tools-show-all", Button).disabled = not is_long(record)

    @on(OptionList.OptionHighlighted, "#tools-list")
    def _highlighted(self, event: OptionList.OptionHighlighted) -> None:
        if event.option.id is not None:
            self._show(event.option.id)

    @on(Switch.Changed, "#tools-break")
    def _break_changed(self, event: Switch.Changed) -> None:
        self.post_message(self.BreakToggled(event.value))

    @on(Button.Pressed, "#tools-rerun")
    def _rerun(self) -> None:
        record = self.records.get(self._selected or "")
        if record is not None:
            self.post_message(self.RerunRequested(record))

    @on(Button.Pressed, "#tools-show-all")
    def _show_all(self) -> None:
        record = self.records.get(self._selected or "")
        if record is not None:
            self.post_message(self.ShowAllRequested(record))

    def request_rerun(self) -> None:
        self._rerun()
