"""The message box at the bottom of the app."""

from __future__ import annotations

from typing import ClassVar, Protocol, runtime_checkable

from textual import events
from textual.binding import Binding, BindingType
from textual.timer import Timer
from textual.widgets import Input

BLINK_FOR = 10.0
"""Seconds the cursor blinks after the last key, paste or focus; then it stays lit, as terminals
do (GNOME's cursor-blink-timeout is 10 s). An app left open then redraws nothing twice a
second: the blink was three quarters of the idle UI thread's CPU (issue 21, item 2)."""


@runtime_checkable
class ShortcutHost(Protocol):
    """The app: runs the shortcut of a key typed into an empty message box, if it has one."""

    def shortcut(self, char: str) -> bool: ...


class TalkInput(Input):
    """The message box. With nothing typed, ``?`` shows the keys and, on the Logs tab, ``/``
    searches the logs; otherwise they are just characters. The cursor blinks for
    ``blink_for`` seconds after the last key (None: it never blinks)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("question_mark", "key_or_type('?')", "Keys", show=False, priority=True),
        Binding("slash", "key_or_type('/')", "Search logs", show=False, priority=True),
    ]

    blink_for: float | None = BLINK_FOR
    _blink_stop: Timer | None = None

    def action_key_or_type(self, char: str) -> None:
        app = self.app
        if self.value or not isinstance(app, ShortcutHost) or not app.shortcut(char):
            self.insert_text_at_cursor(char)
        self._blink_again()

    def stop_blinking(self) -> None:
        """A steady cursor from now on (headless runs: snapshots do not depend on the blink)."""
        self.blink_for = None
        self._stop_blink()

    def _stop_blink(self) -> None:
        self.cursor_blink = False  # (Input keeps the cursor shown and pauses its timer)

    def _blink_again(self) -> None:
        if self.blink_for is None:
            return
        if self._blink_stop is not None:
            self._blink_stop.stop()
        self.cursor_blink = True
        self._blink_stop = self.set_timer(self.blink_for, self._stop_blink, name="blink-for")

    def on_focus(self, _event: events.Focus) -> None:
        self._blink_again()

    def on_key(self, _event: events.Key) -> None:
        self._blink_again()

    def on_paste(self, _event: events.Paste) -> None:
        self._blink_again()
