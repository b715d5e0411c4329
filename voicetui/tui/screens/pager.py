"""A long text (a tool's whole output) page by page: only one page is ever rendered, so a
10 MB output costs what one page costs."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Static

from .tool_break import MODAL_CSS

PAGE_CHARS = 8_000


class PagerScreen(ModalScreen[None]):
    DEFAULT_CSS = (
        "PagerScreen {"
        + MODAL_CSS
        + "& > Vertical { height: 90%; width: 90%; max-width: 160; }"
        + " #pager-scroll { height: 1fr; background: $surface; } }"
    )
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "close", "Close"),
        Binding("n,right,pagedown", "page(1)", "Next page"),
        Binding("p,left,pageup", "page(-1)", "Previous page"),
    ]

    def __init__(self, title: str, text: str, *, page_chars: int = PAGE_CHARS) -> None:
        super().__init__()
        self.pager_title = title
        self.text = text
        self.page_chars = page_chars
        self.pages = max(1, -(-len(text) // page_chars))
        self.page = 0

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static("", id="pager-title", classes="modal-title", markup=False)
            with VerticalScroll(id="pager-scroll"):
                yield Static("", id="pager-body", markup=False)
            with Horizontal(classes="modal-buttons"):
                yield Button("◀ Previous", id="pager-prev", compact=True)
                yield Button("Next ▶", id="pager-next", compact=True)
                yield Button("Close", id="pager-close", variant="primary", compact=True)

    def on_mount(self) -> None:
        self._show()

    def page_text(self) -> str:
        start = self.page * self.page_chars
        return self.text[start : start + self.page_chars]

    def _show(self) -> None:
        total = len(self.text)
        self.query_one("#pager-title", Static).update(
            f"{self.pager_title} · page {self.page + 1}/{self.pages} · {total:,} characters"
        )
        self.query_one("#pager-body", Static).update(Text(self.page_text()))
        self.query_one("#pager-scroll", VerticalScroll).scroll_home(animate=False)
        self.query_one("#pager-prev", Button).disabled = self.page == 0
        self.query_one("#pager-next", Button).disabled = self.page >= self.pages - 1

    def action_page(self, step: int) -> None:
        page = min(self.pages - 1, max(0, self.page + step))
        if page != self.page:
            self.page = page
            self._show()

    def action_close(self) -> None:
        self.dismiss(None)

    @on(Button.Pressed, "#pager-prev")
    def _prev(self) -> None:
        self.action_page(-1)

    @on(Button.Pressed, "#pager-next")
    def _next(self) -> None:
        self.action_page(1)

    @on(Button.Pressed, "#pager-close")
    def _close(self) -> None:
        self.dismiss(None)
