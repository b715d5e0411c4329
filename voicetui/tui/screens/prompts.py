"""Small dialogs: re-run a tool with edited arguments, room details, export path."""

from __future__ import annotations

from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static, TextArea

from ...runtime.api import RoomDetails
from ..format import pretty_json
from .tool_break import MODAL_CSS, JsonEditor, parse_arguments, steady_cursors

CANCEL: list[BindingType] = [Binding("escape", "cancel", "Cancel")]


class RerunScreen(ModalScreen[str | None]):
    """Edit a past call's arguments; returns them as compact JSON (None: cancelled)."""

    DEFAULT_CSS = (
        "RerunScreen {"
        + MODAL_CSS
        + "& > Vertical { height: 70%; max-height: 24; } #rerun-args { height: 1fr; } }"
    )
    BINDINGS: ClassVar[list[BindingType]] = CANCEL

    def __init__(self, name: str, arguments: str) -> None:
        super().__init__()
        self.tool_name = name
        self.arguments = arguments

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(f"↻ Re-run {self.tool_name}", classes="modal-title", markup=False)
            yield Label("Arguments (JSON)")
            yield JsonEditor(pretty_json(self.arguments or "{}"), id="rerun-args", soft_wrap=True)
            yield Static("", id="rerun-error", classes="modal-error", markup=False)
            with Horizontal(classes="modal-buttons"):
                yield Button("Cancel", id="rerun-cancel", compact=True)
                yield Button("Run", id="rerun-run", variant="primary", compact=True)

    def on_mount(self) -> None:
        steady_cursors(self)
        self.query_one("#rerun-args", TextArea).focus()

    def action_cancel(self) -> None:
        self.dismiss(None)

    @on(Button.Pressed, "#rerun-cancel")
    def _cancel(self) -> None:
        self.dismiss(None)

    @on(Button.Pressed, "#rerun-run")
    def _run(self) -> None:
        arguments, error = parse_arguments(self.query_one("#rerun-args", TextArea).text)
        if error is not None:
            self.query_one("#rerun-error", Static).update(error)
            return
        self.dismiss(arguments)


class RoomScreen(ModalScreen[RoomDetails | None]):
    """Which LiveKit room to join."""

    DEFAULT_CSS = "RoomScreen {" + MODAL_CSS + "Input { margin-bottom: 0; } }"
    BINDINGS: ClassVar[list[BindingType]] = CANCEL

    def __init__(
        self,
        reason: str | None = None,
        previous: RoomDetails | None = None,
        *,
        default_room: str = "voicetui",
    ) -> None:
        super().__init__()
        self.reason = reason
        self.previous = previous
        self.default_room = default_room

    def compose(self) -> ComposeResult:
        prev = self.previous
        with Vertical():
            yield Static("Join a LiveKit room", classes="modal-title")
            if self.reason:
                yield Static(self.reason, classes="modal-error", markup=False)
            yield Label("Server URL")
            yield Input(prev.url if prev else "", placeholder="wss://…", id="room-url")
            yield Label("Room name")
            yield Input(prev.room if prev else "", placeholder=self.default_room, id="room-name")
            yield Label("Token (or leave empty to use the configured API key/secret)")
            yield Input((prev.token or "") if prev else "", password=True, id="room-token")
            yield Static("", id="room-error", classes="modal-error", markup=False)
            with Horizontal(classes="modal-buttons"):
                yield Button("Cancel", id="room-cancel", compact=True)
                yield Button("Join", id="room-join", variant="primary", compact=True)

    def on_mount(self) -> None:
        steady_cursors(self)

    def action_cancel(self) -> None:
        self.dismiss(None)

    @on(Button.Pressed, "#room-cancel")
    def _cancel(self) -> None:
        self.dismiss(None)

    @on(Input.Submitted)
    @on(Button.Pressed, "#room-join")
    def _join(self) -> None:
        url = self.query_one("#room-url", Input).value.strip()
        room = self.query_one("#room-name", Input).value.strip() or self.default_room
        token = self.query_one("#room-token", Input).value.strip() or None
        if not url:
            self.query_one("#room-error", Static).update("The server URL is needed.")
            return
        self.dismiss(RoomDetails(url=url, room=room, token=token))


class ExportScreen(ModalScreen[str | None]):
    """Where to save the transcript."""

    DEFAULT_CSS = "ExportScreen {" + MODAL_CSS + "}"
    BINDINGS: ClassVar[list[BindingType]] = CANCEL

    def __init__(self, default_path: str) -> None:
        super().__init__()
        self.default_path = default_path

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static("Export the transcript", classes="modal-title")
            yield Label("File")
            yield Input(self.default_path, id="export-path")
            with Horizontal(classes="modal-buttons"):
                yield Button("Cancel", id="export-cancel", compact=True)
                yield Button("Save", id="export-save", variant="primary", compact=True)

    def on_mount(self) -> None:
        steady_cursors(self)

    def action_cancel(self) -> None:
        self.dismiss(None)

    @on(Button.Pressed, "#export-cancel")
    def _cancel(self) -> None:
        self.dismiss(None)

    @on(Input.Submitted)
    @on(Button.Pressed, "#export-save")
    def _save(self) -> None:
        path = self.query_one("#export-path", Input).value.strip()
        if path:
            self.dismiss(path)
