"""5000 conversation turns at once: every one arrives, in order, and the UI stays usable.

No wall-clock bound here (a shared machine makes any figure flaky): the timings are measured by
``scripts/bench_conversation.py``. The tests wait on what the app shows, never on the clock."""

from __future__ import annotations

import asyncio

import pytest
from textual.pilot import Pilot

from tests import fake_runtime as fr
from tests.fake_runtime import FakeRuntime, screen_text, settle
from voicetui.tui import handlers
from voicetui.tui import messages as m
from voicetui.tui.app import VoiceTUIApp
from voicetui.tui.widgets.conversation import ConversationView
from voicetui.tui.widgets.state import StatePanel

TURNS = 5000
QUESTION = "Hello number {i}, what time is it in Paris and what is the weather like there today?"
ANSWER = "It is 3:42 PM in Paris. The weather is sunny with a light breeze, around 18 degrees."


def turn_events(turns: int) -> list[object]:
    """What the runtime emits for ``turns`` turns: the transcript, the user's and the agent's
    messages (2 conversation entries per turn)."""
    events: list[object] = []
    for i in range(turns):
        q = QUESTION.format(i=i)
        events += [fr.transcript(q, final=True), fr.user_message(q)]
        events.append(fr.assistant_message(f"{ANSWER} Turn {i}.", e2e=0.9))
    return events


async def drain(pilot: Pilot[int], app: VoiceTUIApp, last_text: str) -> None:
    """Until the conversation's last entry is ``last_text`` (the last thing emitted: events are
    handled in order, so everything before it is in) and no runtime message is left. However
    long the bridge and the slices take on a loaded machine, this waits for them."""
    conv = app.query_one(ConversationView)

    def shown() -> bool:
        payloads = conv.payloads()
        return bool(payloads) and payloads[-1].text == last_text

    while app.runtime_backlog or not shown():
        await pilot.pause()
    await settle(pilot)


async def test_5000_turns_all_arrive_and_the_ui_stays_usable() -> None:
    rt = FakeRuntime()
    app = VoiceTUIApp(rt, bridge_interval=0)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        conv = app.query_one(ConversationView)
        rt.emit(*turn_events(TURNS))  # the runtime's side: queue only
        await drain(pilot, app, f"{ANSWER} Turn {TURNS - 1}.")
        assert len(conv) == 2 * TURNS
        assert [line.text for line in conv.payloads()[:2]] == [
            QUESTION.format(i=0),
            f"{ANSWER} Turn 0.",
        ]
        assert f"Turn {TURNS - 1}." in screen_text(app)

        # with 10 000 entries present: interim transcript updates, scrolling, a resize
        for n in range(50):
            conv.user_transcript(f"typing {n}", False)
        conv.scroll_home(animate=False, immediate=True)
        await pilot.pause()
        conv.scroll_end(animate=False, immediate=True)
        await pilot.resize_terminal(80, 24)
        await settle(pilot)
        assert "typing 49" in screen_text(app)


async def test_a_big_batch_is_handled_in_slices(monkeypatch: pytest.MonkeyPatch) -> None:
    """Thousands of events at once: one slice is handled, the rest waits for the next turn of
    the loop (the app draws and reads keys in between), in order."""
    monkeypatch.setattr(handlers, "SLICE_SECONDS", 0.0)  # every slice is the minimum
    rt = FakeRuntime()
    app = VoiceTUIApp(rt, bridge_interval=0)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        msgs = [m.UserTranscript(fr.transcript(f"line {i}", final=True)) for i in range(300)]
        app.on_runtime_batch(m.RuntimeBatch(list(msgs)))
        assert app.runtime_backlog == 300 - handlers.SLICE_MIN_MESSAGES
        await pilot.press("f2")  # a key between slices is not stuck behind the backlog
        assert app.mic_muted
        await drain(pilot, app, "line 299")
        conv = app.query_one(ConversationView)
        assert [line.text for line in conv.payloads()] == [f"line {i}" for i in range(300)]


async def test_a_flush_due_during_a_pause_is_not_lost(monkeypatch: pytest.MonkeyPatch) -> None:
    """The bridge's delayed flush survives the loop being late (a GC pause, the GIL held by
    the runtime's thread). A Textual one-shot timer whose task starts after its deadline is
    skipped, never called; the bridge then waited for a flush that never came, for good (the
    benchmark's 5,000-turn burst stalled that way once)."""
    from textual import timer as textual_timer

    rt = FakeRuntime()
    app = VoiceTUIApp(rt, bridge_interval=0.005)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        real = textual_timer._time.get_time
        late = [0.0]

        def get_time() -> float:  # every reading 10 ms later than the last: always late
            late[0] += 0.010
            return real() + late[0]

        monkeypatch.setattr(textual_timer._time, "get_time", get_time)
        flushes = app.bridge.messages_posted
        rt.emit_threaded(fr.agent_state("thinking"))
        while app.bridge.messages_posted == flushes:  # noqa: ASYNC110 (flushed just now ...)
            await asyncio.sleep(0)
        rt.emit_threaded(fr.agent_state("listening"))  # ... so this one waits for a timer
        for _ in range(100):
            await asyncio.sleep(0.01)
            if app.query_one("#state", StatePanel).agent_state == "listening":
                break
        monkeypatch.undo()
        assert app.query_one("#state", StatePanel).agent_state == "listening"
