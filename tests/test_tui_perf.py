"""Performance: 5000 conversation turns must not make the UI sluggish.

The numbers are printed (``pytest -s tests/test_tui_perf.py``); the bounds are loose because
the machine may be shared, they catch an O(n²) regression, not a few percent."""

from __future__ import annotations

import time

from tests import fake_runtime as fr
from tests.fake_runtime import FakeRuntime, screen_text, settle
from voicetui.tui.app import VoiceTUIApp
from voicetui.tui.widgets.conversation import ConversationView

TURNS = 5000
QUESTION = "Hello number {i}, what time is it in Paris and what is the weather like there today?"
ANSWER = "It is 3:42 PM in Paris. The weather is sunny with a light breeze, around 18 degrees."


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
        await settle(pilot)
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
