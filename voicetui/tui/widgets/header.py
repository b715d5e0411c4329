"""The header: agent name, mode, models, and a recording indicator with the elapsed time."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import ClassVar

from rich.text import Text
from textual.reactive import reactive
from textual.timer import Timer
from textual.widget import Widget

from ..format import format_elapsed


class SessionHeader(Widget):
    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "header--title",
        "header--mode",
        "header--rec",
        "header--dim",
    }

    DEFAULT_CSS = """
    SessionHeader {
        dock: top;
        height: 2;
        background: $panel;
        color: $foreground;
        padding: 0 1;
        & > .header--title { color: $primary; text-style: bold; }
        & > .header--mode { color: $accent; text-style: bold; }
        & > .header--rec { color: $error; text-style: bold; }
        & > .header--dim { color: $text-muted; }
    }
    """

    app_title: reactive[str] = reactive("voicetui")
    agent_name: reactive[str] = reactive("…")
    mode: reactive[str] = reactive("")
    mode_description: reactive[str] = reactive("starting")
    models: reactive[str] = reactive("")
    recording_since: reactive[float | None] = reactive(None)
    recording_dir: reactive[str | None] = reactive(None)
    loading_text: reactive[str] = reactive("")

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.time,
        id: str | None = None,
    ) -> None:
        super().__init__(id=id)
        self._clock = clock
        self._timer: Timer | None = None

    def watch_recording_since(self, since: float | None) -> None:
        if since is not None and self._timer is None and self.is_mounted:
            self._timer = self.set_interval(1.0, self.refresh)
        elif since is None and self._timer is not None:
            self._timer.stop()
            self._timer = None

    def on_mount(self) -> None:
        self.watch_recording_since(self.recording_since)

    def render(self) -> Text:
        width = self.size.width
        line1 = Text(no_wrap=True, overflow="ellipsis")
        line1.append(f"◆ {self.app_title}", style=self.get_component_rich_style("header--title"))
        line1.append("  ")
        line1.append(self.agent_name, style="bold")
        if self.mode_description:
            line1.append("  │  ", style=self.get_component_rich_style("header--dim"))
            line1.append(self.mode_description, style=self.get_component_rich_style("header--mode"))
        right = Text(no_wrap=True)
        if self.recording_since is not None:
            elapsed = format_elapsed(self._clock() - self.recording_since)
            right.append(f"● REC {elapsed}", style=self.get_component_rich_style("header--rec"))
        elif self.loading_text:
            right.append(self.loading_text, style=self.get_component_rich_style("header--dim"))
        room = width - right.cell_len - 2
        if room > 0 and line1.cell_len > room:
            line1.truncate(room, overflow="ellipsis")
        gap = max(1, width - line1.cell_len - right.cell_len)
        line1.append(" " * gap)
        line1.append_text(right)
        line2 = Text(no_wrap=True, overflow="ellipsis")
        line2.append(self.models or "models: …", style=self.get_component_rich_style("header--dim"))
        if self.recording_dir:
            line2.append(f"  ·  recording to {self.recording_dir}", style="dim")
        line2.truncate(width, overflow="ellipsis")
        return Text("\n").join([line1, line2])
