"""The latency panel: one row per turn (EOU, STT, LLM TTFT, TTS TTFB, E2E) with a stacked bar,
and the session's p50/p95 above."""

from __future__ import annotations

from typing import ClassVar

from rich.style import Style
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widget import Widget
from textual.widgets import DataTable, Static

from ..format import format_seconds
from ..latency import COLUMNS, LABELS, LatencyBook, TurnLatency

BAR_WIDTH = 28
SCALES = (0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0)
SEGMENT_STYLE = {"eou": "eou", "llm": "llm", "tts": "tts", "other": "other"}


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


class LatencyPanel(Vertical):
    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "latency--eou",
        "latency--llm",
        "latency--tts",
        "latency--other",
        "latency--stt",
        "latency--head",
    }

    DEFAULT_CSS = """
    LatencyPanel {
        & > .latency--eou { color: $vt-eou; }
        & > .latency--stt { color: $vt-stt; }
        & > .latency--llm { color: $vt-llm; }
        & > .latency--tts { color: $vt-tts; }
        & > .latency--other { color: $vt-other; }
        & > .latency--head { color: $text-muted; text-style: bold; }
        #latency-summary { height: auto; padding: 0 1; }
        #latency-table { height: 1fr; }
    }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.book = LatencyBook()
        self._scale = SCALES[1]
        self._keys: set[str] = set()
        self._summary_pending = False

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
        return {
            name: self.get_component_rich_style(f"latency--{name}", partial=True)
            for name in ("eou", "llm", "tts", "other", "stt", "head")
        }

    # --- updates (UI thread) ----------------------------------------------------------------
    def row_changed(self, row: TurnLatency | None) -> None:
        if row is None:
            return
        table = self._table()
        styles = self._styles()
        rescale = self._fit_scale(row.total())
        key = f"turn-{row.index}"
        cells: list[str | Text] = [str(row.index)]
        cells += [format_seconds(row.value(c)) for c in COLUMNS]
        cells.append(stacked_bar(row, self._scale, BAR_WIDTH, styles))
        if key in self._keys:
            for column, value in zip(("index", *COLUMNS, "bar"), cells, strict=True):
                table.update_cell(key, column, value)
        else:
            follow = table.scroll_y >= table.max_scroll_y - 1
            self._keys.add(key)
            table.add_row(*cells, key=key)
            if follow:
                table.scroll_end(animate=False, immediate=False)
        if rescale:
            for other in self.book.rows:
                if f"turn-{other.index}" in self._keys:
                    table.update_cell(
                        f"turn-{other.index}",
                        "bar",
                        stacked_bar(other, self._scale, BAR_WIDTH, styles),
                    )
        if not self._summary_pending:  # once per batch of rows
            self._summary_pending = True
            self.call_next(self._refresh_summary)

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
        self._keys.clear()
        self._table().clear()
        self._scale = SCALES[1]
        self._refresh_summary()

    def _refresh_summary(self) -> None:
        self._summary_pending = False
        styles = self._styles()
        grid = Table.grid(padding=(0, 2))
        grid.add_column(style=styles["head"], no_wrap=True)
        for _ in COLUMNS:
            grid.add_column(justify="right", no_wrap=True)
        grid.add_row(f"{len(self.book.rows)} turns", *[LABELS[c] for c in COLUMNS])
        for p in (50, 95):
            values = self.book.percentiles(p)
            grid.add_row(f"p{p}", *[format_seconds(values[c]) for c in COLUMNS])
        legend = Text(no_wrap=True, overflow="ellipsis")
        for name, label in (("eou", "EOU"), ("llm", "LLM"), ("tts", "TTS"), ("other", "other")):
            legend.append("█ ", style=styles[name])
            legend.append(f"{label}  ")
        legend.append(f"bar: {BAR_WIDTH} cells = {self._scale:g} s", style=styles["head"])
        summary = Table.grid()
        summary.add_row(grid)
        summary.add_row(legend)
        self.query_one("#latency-summary", Static).update(summary)


class RecentTurns(Widget):
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
        & > .latency--head { color: $text-muted; text-style: bold; }
    }
    """

    SHOWN = 8

    def __init__(self, book: LatencyBook, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.book = book

    def render(self) -> Table:
        styles = {
            name: self.get_component_rich_style(f"latency--{name}", partial=True)
            for name in ("eou", "llm", "tts", "other", "head")
        }
        grid = Table.grid(padding=(0, 1))
        grid.add_column(width=4, justify="right", no_wrap=True, style=styles["head"])
        grid.add_column(width=7, justify="right", no_wrap=True)
        grid.add_column(no_wrap=True)
        grid.add_row("turn", "e2e", Text("EOU·LLM·TTS", style=styles["head"]))
        rows = self.book.rows[-self.SHOWN :]
        width = max(6, self.size.width - 16)
        scale = max([r.total() for r in rows] + [0.5])
        for row in rows:
            grid.add_row(
                str(row.index),
                format_seconds(row.e2e),
                stacked_bar(row, scale, width, styles),
            )
        p50 = self.book.percentiles(50)["e2e"]
        p95 = self.book.percentiles(95)["e2e"]
        grid.add_row("", "", "")
        grid.add_row("p50", format_seconds(p50), Text("p95 " + format_seconds(p95)))
        return grid
