"""The state panel: agent and user state badges, mic/speaker level meters, mute, push-to-talk,
break-on-tool-call, and the last turn's latency. Also a one-line form for narrow screens."""

from __future__ import annotations

import math
from typing import ClassVar

from rich.style import Style
from rich.text import Text
from textual.geometry import Size
from textual.reactive import reactive
from textual.strip import Strip
from textual.widget import Widget

from .styling import CachedComponentStyles
from .vlog import panel_strips

FLOOR_DBFS = -60.0

AGENT_BADGES: dict[str, tuple[str, str]] = {
    "initializing": ("◌ initializing", "dim"),
    "idle": ("○ idle", "dim"),
    "listening": ("● listening", "ok"),
    "thinking": ("◐ thinking", "warn"),
    "speaking": ("◉ speaking", "accent"),
    "tool": ("⚙ tool running", "tool"),
}
USER_BADGES: dict[str, tuple[str, str]] = {
    "listening": ("○ listening", "dim"),
    "speaking": ("◉ speaking", "accent"),
    "away": ("◌ away", "warn"),
}


def meter(dbfs: float, peak: float, width: int, styles: dict[str, Style]) -> Text:
    """A level bar from ``FLOOR_DBFS`` to 0 dBFS with a peak mark."""
    width = max(4, width)

    def cells(v: float) -> int:
        v = max(FLOOR_DBFS, min(0.0, v))
        return round((v - FLOOR_DBFS) / -FLOOR_DBFS * width)

    filled = cells(dbfs)
    peak_at = cells(peak) - 1
    bar = Text(no_wrap=True)
    for i in range(width):
        if i < filled:
            frac = i / width
            style = styles["ok"] if frac < 0.6 else styles["warn"] if frac < 0.85 else styles["bad"]
            bar.append("█", style=style)
        elif i == peak_at and peak_at >= filled:
            bar.append("▏", style=styles["warn"])
        else:
            bar.append("·", style=styles["dim"])
    return bar


def shown_dbfs(dbfs: float) -> float:
    """A level as the meters show it: whole dB from the floor to 0 (NaN: the floor)."""
    if math.isnan(dbfs):
        return FLOOR_DBFS
    return float(round(max(FLOOR_DBFS, min(0.0, dbfs))))


class StatePanel(CachedComponentStyles, Widget):
    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "state--ok",
        "state--warn",
        "state--bad",
        "state--dim",
        "state--accent",
        "state--tool",
        "state--label",
    }

    DEFAULT_CSS = """
    StatePanel {
        height: auto;
        padding: 0 1;
        & > .state--ok { color: $success; }
        & > .state--warn { color: $warning; }
        & > .state--bad { color: $error; text-style: bold; }
        & > .state--dim { color: $text-muted; }
        & > .state--accent { color: $accent; text-style: bold; }
        & > .state--tool { color: $vt-tool; text-style: bold; }
        & > .state--label { color: $text-muted; }
    }
    StatePanel.-compact { height: 1; }
    """

    agent_state: reactive[str] = reactive("initializing")
    user_state: reactive[str] = reactive("listening")
    tools_running: reactive[int] = reactive(0)
    mic_muted: reactive[bool] = reactive(False)
    push_to_talk: reactive[bool] = reactive(False)
    break_on_tool_call: reactive[bool] = reactive(False)
    input_dbfs: reactive[float] = reactive(FLOOR_DBFS)
    input_peak: reactive[float] = reactive(FLOOR_DBFS)
    output_dbfs: reactive[float] = reactive(FLOOR_DBFS)
    output_peak: reactive[float] = reactive(FLOOR_DBFS)
    last_e2e: reactive[float | None] = reactive(None)
    mode: reactive[str] = reactive("")
    echo_cancelling: reactive[bool] = reactive(False)
    erle_db: reactive[float | None] = reactive(None)
    """Shown rounded to whole dB (levels arrive at 20 Hz: only a change redraws)."""

    def __init__(
        self, *, compact: bool = False, read_only: bool = False, id: str | None = None
    ) -> None:
        """``read_only``: a recording is shown (no meters, no mute/push-to-talk/break rows:
        nothing of that can be used or was recorded)."""
        super().__init__(id=id, classes="-compact" if compact else None)
        self.compact = compact
        self.read_only = read_only
        self._lines: list[Strip] = []
        self._lines_key: tuple[object, ...] | None = None

    def _styles(self) -> dict[str, Style]:
        return {
            name: self.component_style(f"state--{name}")
            for name in ("ok", "warn", "bad", "dim", "accent", "tool", "label")
        }

    def show_levels(
        self,
        mic: float,
        mic_peak: float,
        speaker: float,
        speaker_peak: float,
        *,
        echo_cancelling: bool = False,
        erle_db: float | None = None,
    ) -> None:
        """Set the meters (dBFS). Levels arrive at 20 Hz: they are kept as the meters show them,
        so silence (anything under the floor) or a level within the same dB redraws nothing."""
        self.input_dbfs = shown_dbfs(mic)
        self.input_peak = shown_dbfs(mic_peak)
        self.output_dbfs = shown_dbfs(speaker)
        self.output_peak = shown_dbfs(speaker_peak)
        self.echo_cancelling = echo_cancelling
        self.erle_db = None if erle_db is None else float(round(erle_db))

    def agent_badge(self) -> tuple[str, str]:
        key = "tool" if self.tools_running > 0 else self.agent_state
        return AGENT_BADGES.get(key, (self.agent_state, "dim"))

    def notify_style_update(self) -> None:
        self._lines_key = None
        super().notify_style_update()

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        return len(self.render().plain.split("\n"))

    def render_line(self, y: int) -> Strip:
        """The full panel is drawn as strips once per change of what it shows (the meters move
        it at up to 20 Hz, and Textual's rendering of the Text costs several times more); the
        compact line is Textual's (it ends with an ellipsis when cut)."""
        if self.compact:
            return super().render_line(y)
        width = self.content_region.width
        key = (self._shown(), width, self.app.theme)
        if key != self._lines_key:
            self._lines_key = key
            self._lines = panel_strips(self.app.console, self.render(), width, self.rich_style)
        if y < len(self._lines):
            return self._lines[y]
        return Strip.blank(width, self.rich_style)

    def _shown(self) -> tuple[object, ...]:
        """Everything the full panel shows."""
        return (
            self.agent_state,
            self.user_state,
            self.tools_running,
            self.mic_muted,
            self.push_to_talk,
            self.break_on_tool_call,
            self.input_dbfs,
            self.input_peak,
            self.output_dbfs,
            self.output_peak,
            self.last_e2e,
            self.mode,
            self.echo_cancelling,
            self.erle_db,
            self.size.width,
        )

    def render(self) -> Text:
        styles = self._styles()
        agent_text, agent_style = self.agent_badge()
        user_text, user_style = USER_BADGES.get(self.user_state, (self.user_state, "dim"))
        mic = (
            Text("✗ muted (F2)", style=styles["bad"])
            if self.mic_muted
            else Text("off (F2)", style=styles["dim"])
        )
        if self.push_to_talk:
            ptt = Text("● open: F3 sends", style=styles["accent"])
        else:
            ptt = Text("off (F3)", style=styles["dim"])
        brk = Text(
            "on" if self.break_on_tool_call else "off",
            style=styles["warn"] if self.break_on_tool_call else styles["dim"],
        )
        if self.compact:
            line = Text(no_wrap=True, overflow="ellipsis")
            line.append("agent ", style=styles["label"])
            line.append(agent_text, style=styles[agent_style])
            line.append("  user ", style=styles["label"])
            line.append(user_text, style=styles[user_style])
            if self.read_only:
                return line
            line.append("  mic ", style=styles["label"])
            line.append(meter(self.input_dbfs, self.input_peak, 8, styles))
            if self.mic_muted:
                line.append(" muted", style=styles["bad"])
            if self.push_to_talk:
                line.append("  ● PTT: F3 send, Esc cancel", style=styles["accent"])
            if self.break_on_tool_call:
                line.append("  ⏸ break", style=styles["warn"])
            return line
        width = max(10, self.size.width - 2)
        meter_width = max(4, width - 18)
        last = "—" if self.last_e2e is None else f"{self.last_e2e:.2f} s"
        rows: list[tuple[str, Text]] = [
            ("Agent", Text(agent_text, style=styles[agent_style])),
            ("User", Text(user_text, style=styles[user_style])),
            ("", Text()),
        ]
        if not self.read_only:  # a recording has no live meters or controls
            rows += self._live_rows(mic, ptt, brk, meter_width, styles)
        rows.append(("Last e2e", Text(last, style=styles["accent"])))
        # a label column of 8 cells and the value: plain lines (a rich Table costs several
        # times more to draw, and the meters redraw the panel at up to 20 Hz)
        panel = Text(no_wrap=True, overflow="crop", end="")
        for i, (label, value) in enumerate(rows):
            if i:
                panel.append("\n")
            panel.append(f"{label:<8.8} ", style=styles["label"])
            panel.append_text(value)
        return panel

    def _live_rows(
        self, mic: Text, ptt: Text, brk: Text, meter_width: int, styles: dict[str, Style]
    ) -> list[tuple[str, Text]]:
        return [
            ("Mic", self._level(self.input_dbfs, self.input_peak, meter_width, styles)),
            ("Speaker", self._level(self.output_dbfs, self.output_peak, meter_width, styles)),
            ("Echo", self._echo_text(styles)),
            ("", Text()),
            ("Mute", mic),
            ("PTT", ptt),
            ("Break", brk),
        ]

    def _echo_text(self, styles: dict[str, Style]) -> Text:
        """Echo cancellation, and how much echo it removes while the agent speaks (ERLE)."""
        if not self.echo_cancelling:
            return Text("off" if self.mode == "local" else "—", style=styles["dim"])
        if self.erle_db is None:
            return Text("cancelling", style=styles["dim"])
        return Text(f"cancelling · ERLE {self.erle_db:.0f} dB", style=styles["accent"])

    @staticmethod
    def _level(dbfs: float, peak: float, width: int, styles: dict[str, Style]) -> Text:
        return Text.assemble(meter(dbfs, peak, width, styles), f" {max(FLOOR_DBFS, dbfs):4.0f} dB")
