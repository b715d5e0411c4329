"""Break on tool call: the LLM asked for a tool; the user runs it as is, runs it with edited
arguments, gives a result without running it, or returns an error."""

from __future__ import annotations

import json
from typing import Any, ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen, Screen
from textual.widgets import Button, Input, Label, Static, TextArea

from ...agents.llm.chat_context import FunctionCall
from ...runtime.api import ToolBreakResolution
from ..format import pretty_json

MODAL_CSS = """
    align: center middle;
    & > Vertical {
        width: 90%;
        max-width: 110;
        height: auto;
        max-height: 95%;
        border: thick $primary;
        background: $panel;
        padding: 0 1;
    }
    .modal-title { text-style: bold; color: $primary; padding: 1 0 0 0; }
    .modal-hint { color: $text-muted; }
    .modal-error { color: $error; height: auto; }
    .modal-buttons { height: 1; align-horizontal: right; margin: 1 0; }
    .modal-buttons Button { margin-left: 1; }
"""


class JsonEditor(TextArea):
    """A TextArea for JSON: ctrl+a selects all (TextArea's emacs-style ctrl+a goes to the line
    start; here one replaces or copies a whole value)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+a", "select_all", "Select all", show=False)
    ]


def steady_cursors(screen: Screen[Any]) -> None:
    """No blinking cursors when headless (tests, snapshots): the screen must be deterministic."""
    if screen.app.is_headless:
        for widget in screen.query("Input, TextArea"):
            if isinstance(widget, Input | TextArea):
                widget.cursor_blink = False


def parse_arguments(text: str) -> tuple[str | None, str | None]:
    """``(compact JSON, None)`` for a JSON object, else ``(None, error)``."""
    try:
        value: Any = json.loads(text or "{}")
    except ValueError as e:
        return None, f"Arguments are not valid JSON: {e}"
    if not isinstance(value, dict):
        return None, "Arguments must be a JSON object."
    return json.dumps(value, ensure_ascii=False), None


class ToolBreakScreen(ModalScreen[ToolBreakResolution]):
    DEFAULT_CSS = (
        "ToolBreakScreen {"
        + MODAL_CSS
        + """
        & > Vertical { height: 90%; max-height: 34; }
        #break-args { height: 2fr; min-height: 3; }
        #break-output { height: 1fr; min-height: 3; }
    }
    """
    )

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "run_as_is", "Run as is"),
    ]

    def __init__(self, break_id: str, call: FunctionCall, *, pending: int = 0) -> None:
        super().__init__()
        self.break_id = break_id
        self.call = call
        self.pending = pending
        self._original = pretty_json(call.arguments or "{}")

    def compose(self) -> ComposeResult:
        with Vertical():
            more = f"  (+{self.pending} more waiting)" if self.pending else ""
            yield Static(
                f"⏸ Break on tool call: {self.call.name}{more}", classes="modal-title", markup=False
            )
            yield Static(f"call {self.call.call_id}", classes="modal-hint", markup=False)
            yield Label("Arguments (JSON, editable)")
            yield JsonEditor(self._original, id="break-args", soft_wrap=True)
            yield Label("Result or error message (for Mock result / Return error)")
            yield JsonEditor("", id="break-output", soft_wrap=True)
            yield Static("", id="break-error", classes="modal-error", markup=False)
            with Horizontal(classes="modal-buttons"):
                yield Button("Run as is", id="break-run", variant="primary", compact=True)
                yield Button("Run edited", id="break-run-edited", compact=True)
                yield Button("Mock result", id="break-mock", variant="warning", compact=True)
                yield Button("Return error", id="break-error-btn", variant="error", compact=True)

    def on_mount(self) -> None:
        steady_cursors(self)
        self.query_one("#break-args", TextArea).focus()

    def _text(self, widget_id: str) -> str:
        return self.query_one(widget_id, TextArea).text

    def _fail(self, message: str) -> None:
        self.query_one("#break-error", Static).update(message)

    def action_run_as_is(self) -> None:
        self.dismiss(ToolBreakResolution("run"))

    @on(Button.Pressed, "#break-run")
    def _run(self) -> None:
        self.action_run_as_is()

    @on(Button.Pressed, "#break-run-edited")
    def _run_edited(self) -> None:
        text = self._text("#break-args")
        if text.strip() == self._original.strip():
            self.dismiss(ToolBreakResolution("run"))
            return
        arguments, error = parse_arguments(text)
        if error is not None:
            self._fail(error)
            return
        self.dismiss(ToolBreakResolution("run", arguments=arguments))

    @on(Button.Pressed, "#break-mock")
    def _mock(self) -> None:
        self.dismiss(ToolBreakResolution("mock", output=self._text("#break-output")))

    @on(Button.Pressed, "#break-error-btn")
    def _error(self) -> None:
        message = self._text("#break-output").strip() or "The user stopped this tool call."
        self.dismiss(ToolBreakResolution("error", output=message))
