"""Performance: 5000 conversation turns must not make the UI sluggish.

The numbers are printed (``pytest -s tests/test_tui_perf.py``); the bounds are loose because
the machine may be shared, they catch an O(n²) regression, not a few percent."""

from __future__ import annotations

import asyncio
import time

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


async def _drain(pilot: Pilot[int], app: VoiceTUIApp, lines: int | None = None) -> None:
    """Until the app has handled everything emitted (a big batch takes several slices), and
    the conversation shows ``lines`` entries (on a loaded machine the bridge may not even have
    picked the events up yet when the first backlog check runs)."""
    conv = app.query_one(ConversationView)
    deadline = time.monotonic() + 120
    while app.runtime_backlog or (lines is not None and len(conv) < lines):
        assert time.monotonic() < deadline, f"{len(conv)} of {lines} lines after 120 s"
        await pilot.pause()
    await settle(pilot)


def _render(app: VoiceTUIApp) -> float:
    started = time.perf_counter()
    screen_text(app)  # composes every visible line, like a frame
    return time.perf_counter() - started


async def test_5000_turns_stay_fast() -> None:
    rt = FakeRuntime()
    app = VoiceTUIApp(rt, bridge_interval=0)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        conv = app.query_one(ConversationView)

        events: list[object] = []
        for i in range(TURNS):
            q = QUESTION.format(i=i)
            events += [fr.transcript(q, final=True), fr.user_message(q)]
            events.append(fr.assistant_message(f"{ANSWER} Turn {i}.", e2e=0.9))
        started = time.perf_counter()
        rt.emit(*events)  # the runtime's side: queue only
        emitted = time.perf_counter() - started
        await _drain(pilot, app, lines=2 * TURNS)
        delivered = time.perf_counter() - started
        assert len(conv) == 2 * TURNS
        frame = _render(app)
        text = screen_text(app)
        assert f"Turn {TURNS - 1}." in text

        # with 10 000 entries present: an interim transcript update + frame
        started = time.perf_counter()
        for n in range(50):
            conv.user_transcript(f"typing {n}", False)
            _render(app)
        per_update = (time.perf_counter() - started) / 50

        # scroll to the top and back, and a resize (re-wraps lazily)
        started = time.perf_counter()
        conv.scroll_home(animate=False, immediate=True)
        await pilot.pause()
        _render(app)
        conv.scroll_end(animate=False, immediate=True)
        await pilot.pause()
        scroll = time.perf_counter() - started
        started = time.perf_counter()
        await pilot.resize_terminal(80, 24)
        await settle(pilot)
        _render(app)
        resize = time.perf_counter() - started
        assert "typing 49" in screen_text(app)

        # the widget alone: 5000 turns appended straight to a cleared conversation
        conv.clear_conversation()
        await settle(pilot)
        started = time.perf_counter()
        for i in range(TURNS):
            conv.user_message(QUESTION.format(i=i))
            conv.agent_message(f"{ANSWER} Turn {i}.", False)
        direct = time.perf_counter() - started
        await settle(pilot)
        direct_frame = _render(app)

    print(
        f"\n{TURNS} turns ({2 * TURNS} entries, {3 * TURNS} events): emit {emitted * 1000:.0f} ms, "
        f"delivered+appended {delivered * 1000:.0f} ms, frame {frame * 1000:.1f} ms, "
        f"interim update+frame {per_update * 1000:.2f} ms, scroll home/end {scroll * 1000:.0f} ms, "
        f"resize 120→80 {resize * 1000:.0f} ms; widget alone: {TURNS} turns appended in "
        f"{direct * 1000:.0f} ms, next frame {direct_frame * 1000:.1f} ms"
    )
    assert emitted < 2.0
    assert delivered < 20.0
    assert frame < 0.5
    assert per_update < 0.1
    assert resize < 3.0
    assert direct < 5.0


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
        await _drain(pilot, app)
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
