"""The app side of ``scripts/bench_tui.py``: the TUI on a scripted runtime that appends turns,
timing its own frames, garbage collections and key presses (from the input thread reading F2 to
the first frame written after the action ran). Run by ``bench_tui.py --child``, which has put the
source tree to measure first on ``sys.path``."""

from __future__ import annotations

import gc
import json
import random
import threading
import time
from pathlib import Path
from typing import Any

GC_TUNED = (50_000, 20, 100)


def run_child(scenario: str, turns: int, rate: float, result_path: Path, gc_tuned: bool) -> int:
    from tests import fake_runtime as fr
    from tests.fake_runtime import FakeRuntime
    from voicetui.tui.app import VoiceTUIApp
    from voicetui.tui.widgets.conversation import ConversationView

    stop = threading.Event()
    marks: dict[str, float] = {}
    frames: list[tuple[float, float]] = []  # (when, seconds)

    def turn_events(i: int) -> list[Any]:
        q = f"Question {i}: what is {i} times {i + 1}, and what time is it in Paris today?"
        c = fr.call("calculate", f"call_{i}", expression=f"{i} * {i + 1}")
        return [
            fr.transcript(q[:20]),
            fr.transcript(q, final=True),
            fr.eou(0.4, 0.2, f"speech_{i}"),
            fr.user_message(q),
            fr.agent_state("thinking"),
            fr.tools_started(c, speech_id=f"speech_{i}"),
            fr.tools_executed(fr.execution(c, f"{i * (i + 1)}", 0.001), speech_id=f"speech_{i}"),
            fr.llm(0.3),
            fr.tts(0.15),
            fr.agent_state("speaking", "thinking"),
            fr.assistant_message(
                f"{i} times {i + 1} is {i * (i + 1)}, and it is 3:42 PM in Paris. Turn {i}.",
                eou=0.4,
                llm=0.3,
                tts=0.15,
                e2e=0.95,
            ),
            fr.agent_state("listening", "speaking"),
            fr.user_state("listening", "speaking"),
        ]

    class BenchRuntime(FakeRuntime):
        def start(self) -> Any:
            fut = self._record("start")
            if gc_tuned:  # the proposed policy: see --gc
                gc.freeze()
                gc.set_threshold(*GC_TUNED)
            self.emit(fr.mode(), fr.status(), fr.agent_state("listening", "initializing"))
            threading.Thread(target=self._levels, name="bench-levels", daemon=True).start()
            if scenario in ("steady", "burst"):
                threading.Thread(target=self._turns, name="bench-turns", daemon=True).start()
            return fut

        def _levels(self) -> None:
            n = 0
            while not stop.wait(0.05):
                n += 1
                if scenario.startswith("idle"):
                    mic = -72.0 + random.uniform(-2, 2)  # a quiet room: below the meter's floor
                    spk = -90.0
                else:
                    mic = -30.0 + 20.0 * abs(((n % 40) - 20) / 20)  # moving meters
                    spk = -20.0 - 15.0 * abs(((n % 30) - 15) / 15)
                self.emit(fr.levels(mic, spk))

        def _turns(self) -> None:
            time.sleep(3.0)  # the parent starts pressing keys first
            marks["emit_start"] = time.perf_counter()
            if scenario == "burst":
                events = [ev for i in range(turns) for ev in turn_events(i)]
                marks["built"] = time.perf_counter()
                self.emit(*events)
            else:
                per_tick = rate * 0.05
                due = 0.0
                i = 0
                next_tick = time.perf_counter()
                while i < turns and not stop.is_set():
                    due += per_tick
                    batch: list[Any] = []
                    while i < turns and due >= 1:
                        batch += turn_events(i)
                        i += 1
                        due -= 1
                    self.emit(*batch)
                    next_tick += 0.05
                    time.sleep(max(0.0, next_tick - time.perf_counter()))
            marks["emit_end"] = time.perf_counter()

    presses: list[dict[str, float]] = []  # F2: read by the input thread, acted on, shown
    slices: list[tuple[float, float, int]] = []  # runtime messages handled: (start, s, count)
    read_keys = _time_key_reads()
    acted: list[dict[str, float]] = []

    class BenchApp(VoiceTUIApp):
        def on_runtime_batch(self, batch: Any) -> None:
            if "ui_cpu_start" not in marks and "emit_start" in marks:
                marks["ui_cpu_start"] = time.thread_time()
                marks["cpu_start"] = time.process_time()
            super().on_runtime_batch(batch)
            if "handled" not in marks and len(self.query_one(ConversationView)) >= 3 * turns:
                marks["handled"] = time.perf_counter()
                marks["ui_cpu_end"] = time.thread_time()  # the UI thread's CPU seconds
                marks["cpu_end"] = time.process_time()

        def _handle_slice(self) -> None:
            started = time.perf_counter()
            before = self.runtime_backlog
            super()._handle_slice()
            slices.append((started, time.perf_counter() - started, before - self.runtime_backlog))

        def action_toggle_mute(self) -> None:
            now = time.perf_counter()
            super().action_toggle_mute()
            press = {"read": read_keys.pop(0) if read_keys else now, "action": now}
            acted.append(press)

        def _display(self, screen: Any, renderable: Any) -> None:
            written = renderable is not None and not self._batch_count
            super()._display(screen, renderable)
            if written and acted:  # the first frame after the action: it shows the change
                now = time.perf_counter()
                for press in acted:
                    press["shown"] = now
                presses.extend(acted)
                acted.clear()

    _time_frames(frames)
    gc_pauses = _time_gc()
    app = BenchApp(BenchRuntime(), title=f"voicetui bench: {scenario}")
    try:
        app.run()
    finally:
        stop.set()
        result = {
            "marks": marks,
            "frames": frames,
            "presses": presses,
            "gc": gc_pauses,
            "slices": slices,
        }
        result_path.write_text(json.dumps(result))
    return 0


def _time_key_reads() -> list[float]:
    """When the input thread read each F2 (before it waits in the app's queue): Textual's
    driver hook, wrapped for measuring only."""
    from textual import events
    from textual.driver import Driver

    reads: list[float] = []
    original = Driver.process_message

    def timed(self: Driver, message: Any) -> None:
        if isinstance(message, events.Key) and message.key == "f2":
            reads.append(time.perf_counter())  # (list.append: atomic across threads)
        original(self, message)

    Driver.process_message = timed  # type: ignore[method-assign]
    return reads


def _time_gc() -> list[tuple[float, float, int, float, int]]:
    """Every garbage collection: (start, seconds, generation, CPU seconds of the collecting
    thread — less than the seconds when it waited for the GIL or the CPU —, objects collected)."""
    pauses: list[tuple[float, float, int, float, int]] = []
    started = [0.0, 0.0]

    def callback(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            started[:] = time.perf_counter(), time.thread_time()
        else:
            wall, cpu = time.perf_counter() - started[0], time.thread_time() - started[1]
            pauses.append((started[0], wall, info["generation"], cpu, info["collected"]))

    gc.callbacks.append(callback)
    return pauses


def _time_frames(frames: list[tuple[float, float]]) -> None:
    """Time each of Textual's screen updates (layout + render + output): a private method,
    wrapped for measuring only; skipped if this Textual has no such method."""
    from textual.screen import Screen

    original = getattr(Screen, "_on_timer_update", None)
    if original is None:
        return

    def timed(self: Screen[Any]) -> None:
        started = time.perf_counter()
        original(self)
        frames.append((started, time.perf_counter() - started))

    Screen._on_timer_update = timed  # type: ignore[method-assign]
