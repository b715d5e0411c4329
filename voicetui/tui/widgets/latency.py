"""The latency panel: one row per turn (EOU, STT, LLM TTFT, tools, TTS TTFB, E2E) with a stacked
bar of where its e2e went, stage by stage; above, the session's p50/p95, each stage's p50/p95 and
the worst turn."""

from __future__ import annotations

import asyncio
from typing import ClassVar

from rich.style import Style
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.geometry import Size
from textual.strip import Strip
from textual.widget import Widget
from textual.widgets import DataTable, Static

from ..format import format_seconds
from ..latency import COLUMNS, LABELS, STAGE_LABELS, LatencyBook, TurnLatency
from .styling import CachedComponentStyles
from .vlog import panel_strips

BAR_WIDTH = 28
APPLY_CHUNK = 200
"""Rows written to the table at a time (when thousands arrive together, or when the tab shows
after turns came while it was hidden)."""
SCALES = (0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0)
SEGMENT_STYLE = {
    "eou": "eou",
    "llm": "llm",
    "tts": "tts",
    "other": "other",
    "endpointing": "eou",
    "on_user_turn_completed": "hook",
    "tools": "tools",
    "handoff": "handoff",
    "playout": "other",
}
STYLE_NAMES = ("eou", "llm", "tts", "other", "stt", "head", "hook", "tools", "handoff")


def stacked_bar(row: TurnLatency, scale: float, width: int, styles: dict[str, Style]) -> Text:
    """The row's parts side by side, ``scale`` seconds = ``width`` cells (rounded on the running
    total, so the bar's length matches the total)."""
    bar = Text(no_wrap=True)
    total = 0.0
    used = 0
    for name, seconds in row.segments():
        total += seconds
        end = min(width, round(total / scale * width))
        if end > used:
            bar.append("█" * (end - used), style=styles[SEGMENT_STYLE[name]])
            used = end
    return bar


class LatencyPanel(CachedComponentStyles, Vertical):
    COMPONENT_CLASSES: ClassVar[set[str]] = {f"latency--{name}" for name in STYLE_NAMES}

    DEFAULT_CSS = """
    LatencyPanel {
        & > .latency--eou { color: $vt-eou; }
        & > .latency--stt { color: $vt-stt; }
        & > .latency--llm { color: $vt-llm; }
        & > .latency--tts { color: $vt-tts; }
        & > .latency--other { color: $vt-other; }
        & > .latency--hook { color: $vt-stt; }
        & > .latency--tools { color: $vt-tool; }
        & > .latency--handoff { color: $vt-agent; }
        & > .latency--head { color: $text-muted; text-style: bold; }
        #latency-summary { height: auto; padding: 0 1; }
        #latency-table { height: 1fr; }
    }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.book = LatencyBook()
        self._scale = SCALES[1]
        self._shown: dict[str, list[str | Text]] = {}
        """The cells on screen, by row key."""
        self._pending: dict[int, TurnLatency] = {}
        self._apply_scheduled = False
        self._later: asyncio.TimerHandle | None = None

    def compose(self) -> ComposeResult:
        yield Static(id="latency-summary")
        table: DataTable[str | Text] = DataTable(
            id="latency-table", zebra_stripes=True, cursor_type="row"
        )
        yield table

    def on_mount(self) -> None:
        table = self._table()
        table.add_column("#", key="index", width=4)
        for column in COLUMNS:
            table.add_column(LABELS[column], key=column, width=8)
        table.add_column("breakdown", key="bar", width=BAR_WIDTH)
        self._refresh_summary()

    def _table(self) -> DataTable[str | Text]:
        table: DataTable[str | Text] = self.query_one("#latency-table", DataTable)
        return table

    def _styles(self) -> dict[str, Style]:
        return {name: self.component_style(f"latency--{name}") for name in STYLE_NAMES}

    # --- updates (UI thread) ---------------------------------------------------------------
    def row_changed(self, row: TurnLatency | None) -> None:
        """``row`` changed: shown after the current batch of messages (a turn's row changes
        with each of its metrics; the table is touched once), or when the tab shows."""
        if row is None:
            return
        self._pending[row.index] = row
        self._schedule_apply()

    def _schedule_apply(self, delay: float | None = None) -> None:
        if not self._apply_scheduled:
            self._apply_scheduled = True
            if delay is None:
                self.call_next(self._apply_rows)
            else:  # later: the app reads keys and draws in between (not a Textual one-shot
                # timer: one that starts late is skipped, and the rows would wait for good)
                self._later = asyncio.get_running_loop().call_later(delay, self._apply_rows)

    def on_unmount(self) -> None:
        if self._later is not None:
            self._later.cancel()

    def on_show(self) -> None:
        if self._pending:  # now, even if a (hidden-tab) timer is pending
            self.call_next(self._apply_rows)

    def _cells(self, row: TurnLatency, styles: dict[str, Style]) -> list[str | Text]:
        cells: list[str | Text] = [row.label]  # (typed turns are marked ⌨)
        cells += [format_seconds(row.value(c)) for c in COLUMNS]
        cells.append(stacked_bar(row, self._scale, BAR_WIDTH, styles))
        return cells

    def _apply_rows(self) -> None:
        """Write the changed rows. Each write makes the table (and the summary) lay the whole
        screen out again, a frame of tens of ms: while the tab is hidden, nothing is written
        (on_show catches up, :data:`APPLY_CHUNK` rows at a time)."""
        self._apply_scheduled = False
        if not self._pending or not self.is_on_screen:
            return
        if len(self._pending) <= APPLY_CHUNK:
            pending, self._pending = self._pending, {}
        else:
            keys = sorted(self._pending)[:APPLY_CHUNK]
            pending = {k: self._pending.pop(k) for k in keys}
            self._schedule_apply(delay=0.001)
        table = self._table()
        styles = self._styles()
        rescale = False
        for row in pending.values():
            rescale = self._fit_scale(row.total()) or rescale
        follow = table.scroll_y >= table.max_scroll_y - 1
        added = False
        for row in pending.values():
            key = f"turn-{row.index}"
            cells = self._cells(row, styles)
            shown = self._shown.get(key)
            if shown is None:
                table.add_row(*cells, key=key)
                added = True
            else:
                for column, value, old in zip(
                    ("index", *COLUMNS, "bar"), cells, shown, strict=True
                ):
                    if value != old:
                        table.update_cell(key, column, value)
            self._shown[key] = cells
        if rescale:  # the other rows' bars, at the new scale
            for other in self.book.rows:
                key = f"turn-{other.index}"
                shown = self._shown.get(key)
                if shown is not None and other.index not in pending:
                    shown[-1] = stacked_bar(other, self._scale, BAR_WIDTH, styles)
                    table.update_cell(key, "bar", shown[-1])
        if added and follow:
            table.scroll_end(animate=False, immediate=False)
        self._refresh_summary()

    def _fit_scale(self, total: float) -> bool:
        for scale in SCALES:
            if total <= scale:
                break
        if scale > self._scale:
            self._scale = scale
            return True
        return False

    def clear(self) -> None:
        self.book.clear()
        self._shown.clear()
        self._pending.clear()
        self._table().clear()
        self._scale = SCALES[1]
        self._refresh_summary()

    def _refresh_summary(self) -> None:
        styles = self._styles()
        grid = Table.grid(padding=(0, 2))
        grid.add_column(style=styles["head"], no_wrap=True)
        for _ in COLUMNS:
            grid.add_column(justify="right", no_wrap=True)
        grid.add_row(f"{len(self.book.rows)} turns", *[LABELS[c] for c in COLUMNS])
        for p in (50, 95):
            values = self.book.percentiles(p)
            grid.add_row(f"p{p}", *[format_seconds(values[c]) for c in COLUMNS])
        summary = Table.grid()
        summary.add_row(grid)
        for p in (50, 95):
            summary.add_row(self._stage_line(f"p{p} by stage", self.book.stage_percentiles(p)))
        worst = self.book.worst()
        if worst is not None:
            summary.add_row(self._stage_line(f"worst: turn {worst.label}", worst.segments(), worst))
        legend = Text(no_wrap=True, overflow="ellipsis")
        for name in ("endpointing", "on_user_turn_completed", "llm", "tools", "handoff", "tts"):
            legend.append("█ ", style=styles[SEGMENT_STYLE[name]])
            legend.append(f"{STAGE_LABELS[name]}  ")
        legend.append("█ ", style=styles["other"])
        legend.append("out/other  ")
        legend.append(f"bar: {BAR_WIDTH} cells = {self._scale:g} s", style=styles["head"])
        summary.add_row(legend)
        self.query_one("#latency-summary", Static).update(summary)

    def _stage_line(
        self,
        title: str,
        stages: dict[str, float] | list[tuple[str, float]],
        row: TurnLatency | None = None,
    ) -> Text:
        """``title: e2e  EOU 0.50 · LLM 0.30 · …`` in the stages' colours."""
        styles = self._styles()
        line = Text(no_wrap=True, overflow="ellipsis")
        line.append(f"{title}", style=styles["head"])
        if row is not None:
            line.append(f"  {format_seconds(row.e2e)}")
        items = list(stages.items()) if isinstance(stages, dict) else stages
        if not items:
            line.append("  —")
        for i, (name, seconds) in enumerate(items):
            line.append("  " if i == 0 else " · ")
            line.append(
                f"{STAGE_LABELS.get(name, name)} {format_seconds(seconds)}",
                style=styles[SEGMENT_STYLE.get(name, "other")],
            )
        return line


class RecentTurns(CachedComponentStyles, Widget):
    """The sidebar's view of the last turns: e2e and a stacked bar each, and the session p50."""

    COMPONENT_CLASSES: ClassVar[set[str]] = LatencyPanel.COMPONENT_CLASSES

    DEFAULT_CSS = """
    RecentTurns {
        height: auto;
        padding: 0 1;
        & > .latency--eou { color: $vt-eou; }
        & > .latency--stt { color: $vt-stt; }
        & > .latency--llm { color: $vt-llm; }
        & > .latency--tts { color: $vt-tts; }
        & > .latency--other { color: $vt-other; }
        & > .latency--hook { color: $vt-stt; }
        & > .latency--tools { color: $vt-tool; }
        & > .latency--handoff { color: $vt-agent; }
        & > .latency--head { color: $text-muted; text-style: bold; }
    }
    """

    SHOWN = 8
    LABEL_WIDTH = 4
    E2E_WIDTH = 7

    def __init__(self, book: LatencyBook, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.book = book
        self._rows_shown = 0
        self._lines: list[Strip] = []
        self._lines_key: tuple[int, int, str] | None = None
        """What ``_lines`` were drawn for: (version, width, theme)."""
        self._version = 0

    def rows_changed(self) -> None:
        """Redraw; lay the screen out again only when the panel's height changes (a layout
        pass costs more than the redraw)."""
        self._version += 1
        shown = min(len(self.book.rows), self.SHOWN)
        self.refresh(layout=shown != self._rows_shown)
        self._rows_shown = shown

    def notify_style_update(self) -> None:
        self._version += 1
        super().notify_style_update()

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        return min(len(self.book.rows), self.SHOWN) + 3  # the head, the rows, a gap, p50

    def render_line(self, y: int) -> Strip:
        """Drawn as strips once per change (the sidebar redraws on every batch of turns: a rich
        Table, or Textual's rendering of a multi-line Text, costs several times more)."""
        width = self.content_region.width
        key = (self._version, width, self.app.theme)
        if key != self._lines_key:
            self._lines_key = key
            self._lines = panel_strips(self.app.console, self.text(), width, self.rich_style)
        if y < len(self._lines):
            return self._lines[y]
        return Strip.blank(width, self.rich_style)

    def text(self) -> Text:
        """Three columns (turn, e2e, the bar) as plain lines, laid out as a table grid."""
        styles = {name: self.component_style(f"latency--{name}") for name in STYLE_NAMES}
        rows = self.book.rows[-self.SHOWN :]
        width = max(6, self.size.width - 16)
        scale = max([r.total() for r in rows] + [0.5])
        p50 = self.book.percentile("e2e", 50)
        p95 = self.book.percentile("e2e", 95)
        lines = [
            ("turn", "e2e", Text("EOU·LLM·tools·TTS", style=styles["head"])),
            *((r.label, format_seconds(r.e2e), stacked_bar(r, scale, width, styles)) for r in rows),
            ("", "", Text()),
            ("p50", format_seconds(p50), Text("p95 " + format_seconds(p95))),
        ]
        bar_width = max(cell.cell_len for _, _, cell in lines)
        panel = Text(no_wrap=True, overflow="crop", end="")
        for i, (label, e2e, cell) in enumerate(lines):
            if i:
                panel.append("\n")
            # (each cell but the last ends with the column gap, in its column's style)
            panel.append(f"{_fit(label, self.LABEL_WIDTH)} ", style=styles["head"])
            panel.append(f"{_fit(e2e, self.E2E_WIDTH)} ")
            panel.append_text(cell)
            panel.append(" " * (bar_width - cell.cell_len), style=cell.style)
        return panel


def _fit(text: str, width: int) -> str:
    """``text`` right-justified in ``width`` cells, cut with an ellipsis (a table cell's)."""
    return text.rjust(width) if len(text) <= width else text[: width - 1] + "…"
