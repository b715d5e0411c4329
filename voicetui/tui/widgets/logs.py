"""The Logs tab: Python logging records from the runtime, filtered by level and by a search
(``/`` focuses it; case-insensitive, over the logger name and the message)."""

from __future__ import annotations

import logging
import time
from collections import deque
from typing import ClassVar

from rich.style import Style
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.strip import Strip
from textual.widgets import Input, Label, Select

from ...runtime.api import LogRecordEvent
from .styling import CachedComponentStyles
from .vlog import VirtualLog, estimate_lines, gutter_strips

LEVELS: tuple[tuple[str, int], ...] = (
    ("DEBUG", logging.DEBUG),
    ("INFO", logging.INFO),
    ("WARNING", logging.WARNING),
    ("ERROR", logging.ERROR),
)
KEEP = 10_000
GUTTER = 22


class LogView(CachedComponentStyles, VirtualLog[LogRecordEvent]):
    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "logs--debug",
        "logs--info",
        "logs--warning",
        "logs--error",
        "logs--time",
    }

    DEFAULT_CSS = """
    LogView {
        padding: 0 1;
        & > .logs--debug { color: $text-muted; }
        & > .logs--info { color: $foreground; }
        & > .logs--warning { color: $warning; }
        & > .logs--error { color: $error; text-style: bold; }
        & > .logs--time { color: $text-muted; }
    }
    """

    def _style(self, name: str) -> Style:
        return self.component_style(f"logs--{name}")

    def estimate_height(self, payload: LogRecordEvent, width: int) -> int:
        return estimate_lines(payload.logger + ": " + payload.message, max(8, width - GUTTER))

    def render_payload(self, payload: LogRecordEvent, width: int) -> list[Strip]:
        level = payload.level
        name = (
            "error"
            if level >= logging.ERROR
            else "warning"
            if level >= logging.WARNING
            else "info"
            if level >= logging.INFO
            else "debug"
        )
        stamp = time.strftime("%H:%M:%S", time.localtime(payload.created))
        millis = int((payload.created % 1) * 1000)
        label = Text(f"{stamp}.{millis:03d} ", style=self._style("time"))
        label.append(f"{logging.getLevelName(level)[:7]:<7}", style=self._style(name))
        body = Text(f"{payload.logger}: ", style=self._style("time"))
        body.append(payload.message, style=self._style(name))
        return gutter_strips(self.app.console, label, body, width, GUTTER)


class LogsPanel(Vertical):
    DEFAULT_CSS = """
    LogsPanel {
        #logs-bar { height: 3; padding: 0 1; }
        #logs-bar Label { padding: 1 1 0 0; }
        #logs-level { width: 20; }
        #logs-search { width: 1fr; max-width: 50; margin-left: 2; }
        #logs-view { height: 1fr; }
    }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("slash", "search", "Search logs", show=False),
    ]

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.records: deque[LogRecordEvent] = deque(maxlen=KEEP)
        self.level = logging.INFO
        self.search = ""
        self.dropped = 0

    def compose(self) -> ComposeResult:
        with Horizontal(id="logs-bar"):
            yield Label("Level")
            yield Select(
                [(name, value) for name, value in LEVELS],
                value=self.level,
                allow_blank=False,
                id="logs-level",
            )
            yield Input(placeholder="/ search", id="logs-search", compact=True)
            yield Label("", id="logs-dropped")
        yield LogView(id="logs-view", max_entries=KEEP)

    def view(self) -> LogView:
        return self.query_one("#logs-view", LogView)

    def shown(self, record: LogRecordEvent) -> bool:
        if record.level < self.level:
            return False
        needle = self.search
        return not needle or needle in record.message.lower() or needle in record.logger.lower()

    def add(self, records: list[LogRecordEvent], dropped: int = 0) -> None:
        self.records.extend(records)
        view = self.view()
        for record in records:
            if self.shown(record):
                view.append(record)
        if dropped:
            self.dropped += dropped
            self.query_one("#logs-dropped", Label).update(
                f"{self.dropped} records dropped (the UI fell behind)"
            )

    def set_level(self, level: int) -> None:
        self.level = level
        select: Select[int] = self.query_one("#logs-level", Select)
        if select.value != level:
            with select.prevent(Select.Changed):
                select.value = level
        self._refilter()

    def set_search(self, text: str) -> None:
        self.search = text.strip().lower()
        search = self.query_one("#logs-search", Input)
        if search.value != text:
            with search.prevent(Input.Changed):
                search.value = text
        self._refilter()

    def _refilter(self) -> None:
        view = self.view()
        view.clear()
        for record in self.records:
            if self.shown(record):
                view.append(record)

    def action_search(self) -> None:
        self.query_one("#logs-search", Input).focus()

    @on(Select.Changed, "#logs-level")
    def _level_changed(self, event: Select.Changed) -> None:
        if isinstance(event.value, int):
            self.set_level(event.value)

    @on(Input.Changed, "#logs-search")
    def _search_changed(self, event: Input.Changed) -> None:
        self.set_search(event.value)
