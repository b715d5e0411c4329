"""``?``: the app's own keys, grouped by what they are for (Textual's generic key panel lists
widget internals; this lists what a voicetui user does)."""

from __future__ import annotations

from typing import ClassVar

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from .tool_break import MODAL_CSS

KEY_GROUPS: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = (
    (
        "Conversation",
        (
            ("Enter", "send what you typed"),
            ("F2", "mute / unmute the microphone"),
            ("F3", "push-to-talk: press to start a turn, again to send it (Esc cancels)"),
            ("F4", "interrupt the agent"),
            ("ctrl+t", "switch text ↔ audio"),
            ("F6", "switch local audio ↔ LiveKit room"),
            ("F7", "pick the microphone and speaker"),
        ),
    ),
    (
        "Tools",
        (
            ("F8", "break on tool call on / off (run, edit, mock a result or an error)"),
            ("ctrl+r", "(Tools tab) re-run the selected call with edited arguments"),
            ("ctrl+a", "(JSON editors) select all"),
        ),
    ),
    (
        "Recording",
        (
            ("F5", "start / stop recording"),
            ("ctrl+s", "export the transcript"),
        ),
    ),
    (
        "View",
        (
            ("ctrl+n", "next tab: Conversation → Tools → Latency → Logs"),
            ("F9", "pick a theme"),
            ("ctrl+l", "clear the conversation view (the session keeps it)"),
            ("ctrl+p", "command palette (every action)"),
            ("?", "this list (when nothing is typed)"),
            ("ctrl+q", "quit"),
        ),
    ),
)
"""What the README's key table says too; one list for the screen and the palette's help."""


def keys_table() -> Table:
    table = Table.grid(padding=(0, 2))
    table.add_column(justify="right", style="bold", no_wrap=True)
    table.add_column()
    for i, (group, keys) in enumerate(KEY_GROUPS):
        if i:
            table.add_row("", "")
        table.add_row("", Text(group, style="bold underline"))
        for key, what in keys:
            table.add_row(key, what)
    return table


class KeysScreen(ModalScreen[None]):
    DEFAULT_CSS = "KeysScreen {" + MODAL_CSS + "#keys-scroll { height: auto; max-height: 30; } }"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,question_mark,q", "dismiss", "Close"),
    ]

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static("Keys", classes="modal-title")
            with VerticalScroll(id="keys-scroll"):
                yield Static(keys_table(), id="keys-table")
            yield Static("Esc or ? closes", classes="modal-hint")

    async def action_dismiss(self, result: None = None) -> None:
        self.dismiss(result)
