"""Model loading progress (ModelLoading events): one line per model until all are ready."""

from __future__ import annotations

from typing import ClassVar

from rich.table import Table
from rich.text import Text
from textual.widget import Widget

from ...runtime.api import ModelLoading
from .styling import CachedComponentStyles

DONE = ("ready", "failed")
BAR = 20


class LoadingPanel(CachedComponentStyles, Widget):
    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "loading--bar",
        "loading--ok",
        "loading--bad",
        "loading--dim",
    }

    DEFAULT_CSS = """
    LoadingPanel {
        height: auto;
        max-height: 8;
        display: none;
        border: round $primary;
        border-title-color: $primary;
        padding: 0 1;
        background: $surface;
        &.-active { display: block; }
        & > .loading--bar { color: $primary; }
        & > .loading--ok { color: $success; }
        & > .loading--bad { color: $error; }
        & > .loading--dim { color: $text-muted; }
    }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.models: dict[str, ModelLoading] = {}
        self.border_title = "Loading models"

    @property
    def ready(self) -> bool:
        return bool(self.models) and all(m.stage in DONE for m in self.models.values())

    def summary(self) -> str:
        """For the header while loading: ``loading models 2/4``."""
        if not self.models or self.ready:
            return ""
        done = sum(1 for m in self.models.values() if m.stage in DONE)
        return f"loading models {done}/{len(self.models)}…"

    def update_progress(self, event: ModelLoading) -> None:
        """Show ``event``. Once a model is ready (or failed) only a new ``start`` reopens it: a
        loader's last progress report may arrive after its ``ready`` (llama.cpp reports from
        its worker thread), and must not leave the model at "100%" for good."""
        old = self.models.get(event.kind)
        if old is not None and old.stage in DONE and event.stage not in (*DONE, "start"):
            return
        self.models[event.kind] = event
        self.set_class(not self.ready, "-active")
        self.refresh(layout=True)

    def render(self) -> Table:
        bar_style = self.component_style("loading--bar")
        ok = self.component_style("loading--ok")
        bad = self.component_style("loading--bad")
        dim = self.component_style("loading--dim")
        grid = Table.grid(padding=(0, 1))
        grid.add_column(width=4, no_wrap=True)
        grid.add_column(ratio=1, no_wrap=True, overflow="ellipsis")
        grid.add_column(width=BAR + 6, no_wrap=True)
        grid.add_column(ratio=1, no_wrap=True, overflow="ellipsis")
        for kind, ev in self.models.items():
            if ev.stage == "ready":
                status = Text("✓ ready", style=ok)
            elif ev.stage == "failed":
                status = Text("✗ failed", style=bad)
            elif ev.fraction is None:
                status = Text(f"{ev.stage}…", style=dim)
            else:
                frac = max(0.0, min(1.0, ev.fraction))
                filled = round(frac * BAR)
                status = Text("█" * filled, style=bar_style)
                status.append("░" * (BAR - filled), style=dim)
                status.append(f" {frac * 100:3.0f}%")
            grid.add_row(
                Text(kind.upper(), style="bold"),
                ev.label,
                status,
                Text(ev.message, style=bad if ev.stage == "failed" else dim),
            )
        return grid
