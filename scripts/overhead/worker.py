"""One benchmark run in its own process: N sessions of one framework, pinned to one CPU.

    python scripts/overhead/worker.py --framework voicetui --sessions 16 --turns 20 --out r.json

Prints nothing on success but the result file; the orchestrator (scripts/bench_overhead.py)
runs this with the project interpreter for voicetui and with the scratch venv's for LiveKit.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import logging
import os
import platform
import resource
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from overhead.core import SessionResult, Timings, drive


def _rss_kb(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


class GCPauses:
    """Every garbage collection of the run: its generation and how long it stopped the world
    (``gc.callbacks``: a start/stop pair around each collection)."""

    def __init__(self) -> None:
        self.pauses: list[tuple[int, float]] = []
        self._started = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.pauses.append((info["generation"], time.perf_counter() - self._started))

    def __enter__(self) -> GCPauses:
        gc.callbacks.append(self)
        return self

    def __exit__(self, *exc: object) -> None:
        gc.callbacks.remove(self)


def _cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


FREEZE_GC = False
"""gc.freeze() once the sessions are up (what voicetui's runtime does after start-up)."""

FREEZE_EVERY: float | None = None
"""Run voicetui's OldObjectFreezer with this interval once the sessions are up (a host's
policy for many sessions: full collections scan only what is newer than the last freeze)."""


async def _run(framework: str, sessions: int, t: Timings) -> dict[str, Any]:
    if framework == "voicetui":
        from overhead import adapter_voicetui as adapter
    elif framework == "null":
        from overhead import adapter_null as adapter  # type: ignore[no-redef]
    else:
        from overhead import adapter_livekit as adapter  # type: ignore[no-redef]

    rss_before = _rss_kb("VmRSS")
    benches = [adapter.BenchSession(t) for _ in range(sessions)]
    for b in benches:
        await b.start()
    results = [SessionResult() for _ in range(sessions)]
    # spread the sessions' turns over one turn period so load is steady, not bursty
    period = t.speech + t.endpointing + t.llm_ttft + t.tts_ttfb + t.tts_audio + t.gap
    loop = asyncio.get_running_loop()
    lag: list[float] = []
    stop = asyncio.Event()

    async def monitor() -> None:  # event-loop lag: how late a 50 ms timer fires
        while not stop.is_set():
            t0 = loop.time()
            await asyncio.sleep(0.05)
            lag.append(loop.time() - t0 - 0.05)

    mon = asyncio.create_task(monitor())
    gc.collect()
    if FREEZE_GC:
        gc.freeze()
    freezer = None
    if FREEZE_EVERY is not None:
        from voicetui.agents.utils.gc_freeze import OldObjectFreezer

        freezer = OldObjectFreezer(FREEZE_EVERY)
        freezer.start()
    cpu0, wall0 = _cpu(), time.perf_counter()
    with GCPauses() as gc_pauses:
        await asyncio.gather(
            *(
                drive(i, t, b.user, b.sink, r, start_delay=0.2 + period * i / sessions)
                for i, (b, r) in enumerate(zip(benches, results, strict=True))
            )
        )
    cpu1, wall1 = _cpu(), time.perf_counter()
    rss_live = _rss_kb("VmRSS")
    stop.set()
    await mon
    if freezer is not None:
        await freezer.aclose()
    for b in benches:
        await b.aclose()
    turns = [tr for r in results for tr in r.turns]
    lag.sort()
    return {
        "framework": framework,
        "version": adapter.version(),
        "python": platform.python_version(),
        "sessions": sessions,
        "timings": t.as_dict(),
        "turns": [
            {
                "session": tr.session,
                "turn": tr.turn,
                "tool": tr.tool,
                "added": tr.added,
                "e2e": tr.e2e,
            }
            for tr in turns
        ],
        "errors": [e for r in results for e in r.errors],
        "cpu_seconds": cpu1 - cpu0,
        "wall_seconds": wall1 - wall0,
        "turns_total": len(turns),
        "rss_before_kb": rss_before,
        "rss_live_kb": rss_live,
        "rss_peak_kb": _rss_kb("VmHWM"),
        "loop_lag_p50": lag[len(lag) // 2] if lag else None,
        "loop_lag_p99": lag[min(len(lag) - 1, int(len(lag) * 0.99))] if lag else None,
        "interrupted_segments": sum(b.sink.stats.interrupted for b in benches),
        "gc_pauses": [{"generation": g, "seconds": s} for g, s in gc_pauses.pauses],
    }


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--framework", choices=["voicetui", "livekit", "null"], required=True)
    p.add_argument("--sessions", type=int, default=1)
    p.add_argument("--cpu", type=int, default=None, help="pin the process to this CPU")
    p.add_argument("--timings", default="{}", help="JSON overrides of Timings fields")
    p.add_argument("--nice", type=int, default=0, help="os.nice increment (negative: root)")
    p.add_argument("--out", required=True)
    p.add_argument("--profile", default=None, help="write a cProfile report (text) here")
    p.add_argument(
        "--lk-text-transforms",
        action="store_true",
        help="LiveKit: keep its default tts_text_transforms (markdown/emoji filters)",
    )
    p.add_argument(
        "--vt-task-fakes",
        action="store_true",
        help="voicetui: fake VAD/STT streams read input in a task (one wake-up per frame)",
    )
    p.add_argument("--gc-freeze", action="store_true", help="gc.freeze() after start-up")
    p.add_argument(
        "--gc-freeze-every",
        type=float,
        default=None,
        metavar="SECONDS",
        help="voicetui's OldObjectFreezer with this interval (any framework; needs the checkout)",
    )
    a = p.parse_args()
    global FREEZE_GC, FREEZE_EVERY
    FREEZE_GC = a.gc_freeze
    FREEZE_EVERY = a.gc_freeze_every
    if a.cpu is not None:
        os.sched_setaffinity(0, {a.cpu})
    if a.nice:
        os.nice(a.nice)
    logging.basicConfig(level=logging.CRITICAL)
    if a.framework == "voicetui" or a.gc_freeze_every is not None:
        sys.path.insert(1, str(Path(__file__).resolve().parents[2]))  # the checkout
    t = Timings(**json.loads(a.timings))
    if a.lk_text_transforms:
        os.environ["BENCH_LK_TEXT_TRANSFORMS"] = "1"
    if a.vt_task_fakes and a.framework == "voicetui":
        from overhead import adapter_voicetui

        adapter_voicetui.TASK_PER_FRAME = True
    if a.profile:
        import cProfile
        import io
        import pstats

        prof = cProfile.Profile()
        res = prof.runcall(asyncio.run, _run(a.framework, a.sessions, t))
        buf = io.StringIO()
        st = pstats.Stats(prof, stream=buf)
        st.sort_stats("tottime").print_stats(45)
        st.sort_stats("cumulative").print_stats(60)
        Path(a.profile).write_text(buf.getvalue())
    else:
        res = asyncio.run(_run(a.framework, a.sessions, t))
    res["cpu_pinned"] = a.cpu
    res["nice"] = a.nice
    res["lk_text_transforms"] = a.lk_text_transforms
    res["vt_task_fakes"] = a.vt_task_fakes
    res["gc_freeze"] = a.gc_freeze
    res["gc_freeze_every"] = a.gc_freeze_every
    Path(a.out).write_text(json.dumps(res))


if __name__ == "__main__":
    main()
