"""What a long conversation costs the TUI, in process: 5,000 turns arriving at once.

    .venv/bin/python scripts/bench_conversation.py             # a table
    .venv/bin/python scripts/bench_conversation.py --json      # the same as one JSON object
    .venv/bin/python scripts/bench_conversation.py --turns 1000

The app runs headless (Textual's ``run_test``) on the scripted runtime; the figures are wall
clock on this machine: emitting the events (the runtime's side), delivering and appending them,
one frame with every entry present, an interim transcript update with its frame, scrolling home
and back, a resize, and the conversation widget alone. Each has a target (what catches an
O(n²) regression, not a few percent); the exit status is 1 when one is missed. The tests
(tests/test_tui_perf.py) check the same scenario for correctness only.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.fake_runtime import FakeRuntime, screen_text, settle  # noqa: E402
from tests.test_tui_perf import ANSWER, QUESTION, drain, turn_events  # noqa: E402
from voicetui.tui.app import VoiceTUIApp  # noqa: E402
from voicetui.tui.widgets.conversation import ConversationView  # noqa: E402

TARGETS = {
    "emit": 2.0,
    "delivered": 20.0,
    "frame": 0.5,
    "interim_update": 0.1,
    "resize": 3.0,
    "widget_alone": 5.0,
}
"""Seconds, for 5,000 turns."""


def _render(app: VoiceTUIApp) -> float:
    started = time.perf_counter()
    screen_text(app)  # composes every visible line, like a frame
    return time.perf_counter() - started


async def measure(turns: int) -> dict[str, float]:
    figures: dict[str, float] = {}
    rt = FakeRuntime()
    app = VoiceTUIApp(rt, bridge_interval=0)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        conv = app.query_one(ConversationView)
        events = turn_events(turns)
        started = time.perf_counter()
        rt.emit(*events)
        figures["emit"] = time.perf_counter() - started
        await drain(pilot, app, f"{ANSWER} Turn {turns - 1}.")
        figures["delivered"] = time.perf_counter() - started
        figures["frame"] = _render(app)

        started = time.perf_counter()
        for n in range(50):
            conv.user_transcript(f"typing {n}", False)
            _render(app)
        figures["interim_update"] = (time.perf_counter() - started) / 50

        started = time.perf_counter()
        conv.scroll_home(animate=False, immediate=True)
        await pilot.pause()
        _render(app)
        conv.scroll_end(animate=False, immediate=True)
        await pilot.pause()
        figures["scroll"] = time.perf_counter() - started

        started = time.perf_counter()
        await pilot.resize_terminal(80, 24)
        await settle(pilot)
        _render(app)
        figures["resize"] = time.perf_counter() - started

        conv.clear_conversation()
        await settle(pilot)
        started = time.perf_counter()
        for i in range(turns):
            conv.user_message(QUESTION.format(i=i))
            conv.agent_message(f"{ANSWER} Turn {i}.", False)
        figures["widget_alone"] = time.perf_counter() - started
        await settle(pilot)
        figures["widget_alone_frame"] = _render(app)
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=5000)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    figures = asyncio.run(measure(args.turns))
    scale = args.turns / 5000
    missed = [name for name, target in TARGETS.items() if figures[name] > target * max(scale, 1.0)]
    if args.json:
        print(json.dumps({"turns": args.turns, "seconds": figures, "missed": missed}))
    else:
        print(f"{args.turns} turns ({2 * args.turns} entries, {3 * args.turns} events)")
        for name, value in figures.items():
            target = TARGETS.get(name)
            goal = f"  (target ≤ {target * 1000:.0f} ms)" if target is not None else ""
            flag = "  MISSED" if name in missed else ""
            print(f"  {name:<20} {value * 1000:9.1f} ms{goal}{flag}")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
