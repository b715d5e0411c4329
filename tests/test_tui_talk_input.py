"""The message box stops blinking a while after the last key (an idle app redraws nothing)
and blinks again at the next key; a headless app never blinks."""

from __future__ import annotations

import asyncio

from textual.app import App, ComposeResult
from textual.pilot import Pilot

from voicetui.tui.widgets.talk_input import BLINK_FOR, TalkInput


class _Box(App[None]):
    def __init__(self, blink_for: float) -> None:
        super().__init__()
        self._blink_for = blink_for

    def compose(self) -> ComposeResult:
        talk = TalkInput(id="talk")
        talk.blink_for = self._blink_for
        yield talk

    def on_mount(self) -> None:
        self.query_one(TalkInput).focus()


async def _until_steady(pilot: Pilot[None], talk: TalkInput) -> None:
    for _ in range(300):  # the timer's own time, then as long as a loaded machine needs
        if not talk.cursor_blink:
            return
        await pilot.pause(0.05)
    raise AssertionError("the cursor still blinks")


async def test_the_cursor_stops_blinking_after_a_while_and_blinks_again_on_a_key() -> None:
    assert BLINK_FOR >= 5  # long enough not to stop while someone types
    # (1 s: the checks right after a key come well within it, even on a loaded machine)
    app = _Box(blink_for=1.0)
    async with app.run_test() as pilot:
        talk = app.query_one(TalkInput)
        await pilot.pause()
        assert talk.has_focus and talk.cursor_blink
        await _until_steady(pilot, talk)

        await pilot.press("h", "i")
        assert talk.value == "hi" and talk.cursor_blink
        await _until_steady(pilot, talk)

        talk.blur()
        await pilot.pause()
        talk.focus()
        await pilot.pause()
        assert talk.cursor_blink  # focus again: blinks again
        await _until_steady(pilot, talk)


async def test_after_stop_blinking_keys_do_not_restart_it() -> None:
    app = _Box(blink_for=0.2)
    async with app.run_test() as pilot:
        talk = app.query_one(TalkInput)
        talk.stop_blinking()
        await pilot.press("a")
        await asyncio.sleep(0)
        assert talk.value == "a" and not talk.cursor_blink
