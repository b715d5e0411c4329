"""The Timeline tab: lanes for the user's voice, the transcripts, the end-of-turn decisions, the
agent's state, its audio, tool calls and interruptions, on one time axis. Follows the live end;
←/→ scroll, +/- zoom, End follows again."""

from __future__ import annotations

import time
from typing import ClassVar

from rich.style import Style
from rich.text import Text
from textual.binding import Binding, BindingType
from textual.reactive import reactive
from textual.widget import Widget

from ..timeline import LANE_LABELS, LANES, Kind, Lane, Mark, Span, TimelineModel
from .styling import CachedComponentStyles

SCALES = (0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0)
"""Seconds per cell."""
LABEL_WIDTH = 13
LIVE_REFRESH = 0.25
"""While following a live session, the window moves this often."""

_CELL: dict[Kind, str] = {
    "voice": "█",
    "thinking": "░",
    "speaking": "█",
    "played": "█",
    "tool": "━",
    "tool_error": "━",
    "interim": "·",
    "final": "◆",
    "eot": "▲",
    "eot_unsure": "△",
    "interrupted": "✕",
    "false_interruption": "↺",
}
_STYLE: dict[Kind, str] = {
    "voice": "user",
    "interim": "stt",
    "final": "stt",
    "eot": "eou",
    "eot_unsure": "eou",
    "thinking": "llm",
    "speaking": "agent",
    "played": "tts",
    "tool": "tool",
    "tool_error": "error",
    "interrupted": "error",
    "false_interruption": "warning",
}
_LABELLED: frozenset[Kind] = frozenset(
    {"final", "eot", "eot_unsure", "tool", "tool_error", "interrupted", "false_interruption"}
)


def _ruler_step(scale: float, width: int) -> float:
    """A round number of seconds between ruler labels, about every 12 cells."""
    for step in (0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 15.0, 30.0, 60.0, 120.0, 300.0):
        if step / scale >= 12:
            return step
    return 600.0


class TimelinePanel(CachedComponentStyles, Widget, can_focus=True):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("left", "scroll_time(-1)", "Earlier", show=False),
        Binding("right", "scroll_time(1)", "Later", show=False),
        Binding("plus,equals_sign", "zoom(-1)", "Zoom in", show=False),
        Binding("minus", "zoom(1)", "Zoom out", show=False),
        Binding("end", "follow", "Follow", show=False),
    ]
    COMPONENT_CLASSES: ClassVar[set[str]] = {
        f"timeline--{n}"
        for n in ("user", "stt", "eou", "llm", "agent", "tts", "tool", "error", "warning", "head")
    }
    DEFAULT_CSS = """
    TimelinePanel {
        height: 1fr;
        padding: 0 1;
        & > .timeline--user { color: $vt-user; }
        & > .timeline--stt { color: $vt-stt; }
        & > .timeline--eou { color: $vt-eou; }
        & > .timeline--llm { color: $vt-llm; }
        & > .timeline--agent { color: $vt-agent; }
        & > .timeline--tts { color: $vt-tts; }
        & > .timeline--tool { color: $vt-tool; }
        & > .timeline--error { color: $error; }
        & > .timeline--warning { color: $warning; }
        & > .timeline--head { color: $text-muted; }
    }
    """

    scale: reactive[float] = reactive(SCALES[2])
    follow: reactive[bool] = reactive(True)

    def __init__(self, *, live: bool = True, id: str | None = None) -> None:
        super().__init__(id=id)
        self.model = TimelineModel()
        self.live = live
        """A live session: the window's right edge is now (a recording: its last event)."""
        self._end: float | None = None
        """The window's right edge while not following."""
        self._drawn_version = -1

    def on_mount(self) -> None:
        if self.live:
            self.set_interval(LIVE_REFRESH, self._tick)

    def _tick(self) -> None:
        if self.follow and self.is_on_screen and self.model.latest is not None:
            self.refresh()

    def changed(self) -> None:
        """The model changed: redraw when visible (a hidden tab draws when shown)."""
        if self.is_on_screen:
            self.refresh()

    # --- actions ----------------------------------------------------------------------------
    def action_scroll_time(self, direction: int) -> None:
        self._end = self.window()[1] + direction * self._cells() * self.scale / 4
        self.follow = False

    def action_zoom(self, direction: int) -> None:
        i = min(range(len(SCALES)), key=lambda k: abs(SCALES[k] - self.scale))
        i = max(0, min(len(SCALES) - 1, i + direction))
        if not self.follow:
            start, end = self.window()
            mid = (start + end) / 2
            self._end = mid + self._cells() * SCALES[i] / 2
        self.scale = SCALES[i]

    def action_follow(self) -> None:
        self.follow = True
        self._end = None

    # --- drawing ----------------------------------------------------------------------------
    def _cells(self) -> int:
        return max(10, self.size.width - LABEL_WIDTH - 2)

    def window(self) -> tuple[float, float]:
        """The time window shown (wall clock)."""
        latest = self.model.latest
        if self.follow or self._end is None:
            end = latest if latest is not None else time.time()
            if self.live:
                end = max(end, time.time())
            end += self.scale  # (a cell of room after the latest event)
        else:
            end = self._end
        return end - self._cells() * self.scale, end

    def render(self) -> Text:
        styles = {n: self.component_style(f"timeline--{n}") for n in self._style_names()}
        width = self._cells()
        start, end = self.window()
        origin = self.model.origin if self.model.origin is not None else start
        out = Text(no_wrap=True, overflow="crop")
        state = "following" if self.follow else "paused (End: follow)"
        out.append(
            f"{'':<{LABEL_WIDTH}} {self.scale:g} s/cell · ←/→ scroll · +/- zoom · {state}\n",
            style=styles["head"],
        )
        out.append(f"{'':<{LABEL_WIDTH}} ")
        out.append(self._ruler(start, origin, width), style=styles["head"])
        spans, marks = self.model.in_window(start, end)
        for lane in LANES:
            out.append("\n")
            out.append(f"{LANE_LABELS[lane]:<{LABEL_WIDTH}} ", style=styles["head"])
            out.append_text(self._lane(lane, spans, marks, start, width, styles))
        self._drawn_version = self.model.version
        return out

    @staticmethod
    def _style_names() -> tuple[str, ...]:
        return ("user", "stt", "eou", "llm", "agent", "tts", "tool", "error", "warning", "head")

    def _ruler(self, start: float, origin: float, width: int) -> str:
        step = _ruler_step(self.scale, width)
        cells = [" "] * width
        first = (int((start - origin) / step) + 1) * step
        t = first
        while (col := round((origin + t - start) / self.scale)) < width:
            label = f"|{t:g}s"
            if col >= 0:
                for k, ch in enumerate(label):
                    if col + k < width:
                        cells[col + k] = ch
            t += step
        return "".join(cells)

    def _lane(
        self,
        lane: Lane,
        spans: list[Span],
        marks: list[Mark],
        start: float,
        width: int,
        styles: dict[str, Style],
    ) -> Text:
        cells: list[tuple[str, str | None]] = [(" ", None)] * width
        labels: list[tuple[int, str, str]] = []

        def col(t: float) -> int:
            return int((t - start) / self.scale)

        for span in spans:
            if span.lane != lane:
                continue
            a = max(0, col(span.start))
            b = min(width - 1, col(span.end) if span.end is not None else width - 1)
            for c in range(a, max(a, b) + 1):
                if 0 <= c < width:
                    cells[c] = (_CELL[span.kind], _STYLE[span.kind])
            if span.kind in _LABELLED and span.label:
                labels.append((a + 1, span.label, _STYLE[span.kind]))
        for mark in marks:
            if mark.lane != lane:
                continue
            c = col(mark.at)
            if 0 <= c < width:
                cells[c] = (_CELL[mark.kind], _STYLE[mark.kind])
                if mark.kind in _LABELLED and mark.label:
                    labels.append((c + 1, mark.label, _STYLE[mark.kind]))
        for c0, label, label_style in labels:  # over what is blank or the span's own line
            for k, ch in enumerate(label[:40]):
                c = c0 + k
                if c >= width or cells[c][0] not in (" ", "━"):
                    break
                cells[c] = (ch, label_style)
        text = Text(no_wrap=True)
        for ch, cell_style in cells:
            text.append(ch, style=styles[cell_style] if cell_style is not None else None)
        return text
