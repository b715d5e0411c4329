"""The error banner: the last error stays on screen until the user dismisses it (ctrl+e or a
click), with how many more came since — a toast alone is gone before one has read it."""

from __future__ import annotations

from textual import events
from textual.reactive import reactive
from textual.widgets import Static

from ...conversation import shorten


class ErrorBanner(Static):
    DEFAULT_CSS = """
    ErrorBanner {
        display: none;
        height: auto;
        max-height: 3;
        padding: 0 1;
        background: $error 25%;
        color: $text;
    }
    ErrorBanner.-shown { display: block; }
    """

    count: reactive[int] = reactive(0)

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__("", id=id, markup=False)
        self.last = ""

    def report(self, text: str) -> None:
        self.last = text
        self.count += 1
        self.add_class("-shown")
        self._show()

    def dismiss(self) -> None:
        self.count = 0
        self.last = ""
        self.remove_class("-shown")

    @property
    def shown(self) -> bool:
        return self.has_class("-shown")

    def _show(self) -> None:
        more = f"  (+{self.count - 1} more)" if self.count > 1 else ""
        self.update(f"✗ {shorten(self.last, 300)}{more}  · ctrl+e dismisses · Logs tab for details")

    def on_click(self, event: events.Click) -> None:
        event.stop()
        self.dismiss()
