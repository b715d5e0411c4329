"""What the TUI costs: CPU while idle, and responsiveness while 5,000 turns are appended.

    .venv/bin/python scripts/bench_tui.py            # everything, a table (~3 minutes)
    .venv/bin/python scripts/bench_tui.py --json     # the same as one JSON object
    .venv/bin/python scripts/bench_tui.py --only idle-fake,burst --seconds 10

Every scenario runs the real app in a real terminal (a private tmux server, 120×40) and is
driven from outside, like a user:

- ``idle-real``: ``voicetui --mode local`` (default agent, embedded models) on virtual audio
  devices (a private PulseAudio, scripts/virtual_audio.sh) hearing digital silence. After the
  models are loaded, the process's CPU time is read from /proc over ``--seconds``, per thread.
- ``idle-fake``: the same app on a scripted runtime that only streams silence levels at 20 Hz
  (what the UI alone costs).
- ``steady``: the scripted runtime appends ``--turns`` turns (user transcript pieces, the user
  message, a tool call and its result, metrics, the agent's reply: 13 events each) at
  ``--rate`` turns/s while levels stream at 20 Hz (moving meters).
- ``burst``: the same turns all at once (a long history arriving together, e.g. a recording).

While turns are appended, F2 (mute) is pressed every ~250 ms through tmux and the time until
the screen shows the change (polling ``capture-pane``) is the key→screen latency. The app reports
its frame times (Textual's screen update, timed in the child) and when the last turn was handled.
Targets (issue 8): idle ≤ 5 % of one core; key→screen p95 ≤ 100 ms.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import random
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.tmux_driver import TmuxSession  # noqa: E402

SIZE = (120, 40)
SCENARIOS = ("idle-real", "idle-fake", "steady", "burst")
TICK = os.sysconf("SC_CLK_TCK")
IDLE_TARGET = 5.0
KEY_TARGET = 0.100
LOST_AFTER = 10.0
"""A press whose change has not shown after this long is counted as lost."""


# --- the child: the app on a scripted runtime ---------------------------------------------------
GC_TUNED = (50_000, 20, 100)


def _child(scenario: str, turns: int, rate: float, result_path: Path, gc_tuned: bool) -> int:
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

    class BenchApp(VoiceTUIApp):
        def on_runtime_batch(self, batch: Any) -> None:
            super().on_runtime_batch(batch)
            if "handled" not in marks and len(self.query_one(ConversationView)) >= 3 * turns:
                marks["handled"] = time.perf_counter()

    _time_frames(frames)
    app = BenchApp(BenchRuntime(), title=f"voicetui bench: {scenario}")
    try:
        app.run()
    finally:
        stop.set()
        result_path.write_text(json.dumps({"marks": marks, "frames": frames}))
    return 0


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


# --- the parent: measuring from outside ---------------------------------------------------------
def _cpu_ticks(pid: int) -> dict[str, int]:
    """CPU ticks (user + system) by thread name, and ``"total"`` for the process."""
    out: dict[str, int] = {}
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    out["total"] = int(fields[11]) + int(fields[12])
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):
            name = (task / "comm").read_text().strip()
            tstat = (task / "stat").read_text()
            tf = tstat[tstat.rindex(")") + 2 :].split()
            out[f"thread {name}"] = out.get(f"thread {name}", 0) + int(tf[11]) + int(tf[12])
    return out


def _measure_cpu(pid: int, seconds: float) -> dict[str, Any]:
    before, t0 = _cpu_ticks(pid), time.monotonic()
    time.sleep(seconds)
    after, t1 = _cpu_ticks(pid), time.monotonic()
    wall = t1 - t0
    pct = {
        k: 100.0 * (after[k] - before.get(k, 0)) / TICK / wall
        for k in after
        if after[k] - before.get(k, 0) > 0
    }
    threads = sorted(((k[7:], v) for k, v in pct.items() if k != "total"), key=lambda kv: -kv[1])
    return {"cpu_pct": round(pct.get("total", 0.0), 2), "seconds": round(wall, 1),
            "threads": [(name, round(v, 2)) for name, v in threads[:6]]}  # fmt: skip


_NAME_THREADS = """\
import ctypes, threading
_prctl = ctypes.CDLL(None).prctl
_run = threading.Thread._bootstrap_inner
def _named(self):
    try:
        _prctl(15, self.name.encode()[:15], 0, 0, 0)  # PR_SET_NAME: /proc/PID/task/TID/comm
    except Exception:
        pass
    _run(self)
threading.Thread._bootstrap_inner = _named
"""


@contextlib.contextmanager
def _named_threads() -> Iterator[dict[str, str]]:
    """An environment whose Python names its OS threads after its ``threading`` threads (a
    ``sitecustomize``), so /proc tells the UI thread from the session's and the models'."""
    with tempfile.TemporaryDirectory(prefix="voicetui-bench-site-") as tmp:
        (Path(tmp) / "sitecustomize.py").write_text(_NAME_THREADS)
        path = os.pathsep.join(p for p in (tmp, os.environ.get("PYTHONPATH", "")) if p)
        yield {"PYTHONPATH": path}


@contextlib.contextmanager
def _virtual_audio() -> Iterator[dict[str, str]]:
    tmp = Path(tempfile.mkdtemp(prefix="voicetui-bench-audio-"))
    env = {**os.environ, "VIRTUAL_AUDIO_DIR": str(tmp)}
    script = ROOT / "scripts" / "virtual_audio.sh"
    subprocess.run([str(script), "start"], env=env, check=True, capture_output=True, timeout=60)
    try:
        yield {"XDG_RUNTIME_DIR": str(tmp), "PULSE_SERVER": f"unix:{tmp}/pulse/native"}
    finally:
        subprocess.run([str(script), "stop"], env=env, capture_output=True, timeout=60)
        shutil.rmtree(tmp, ignore_errors=True)


def _quit(tmux: TmuxSession) -> int | None:
    tmux.send_keys("C-q")
    try:
        return tmux.wait_for_exit(timeout=60)
    except TimeoutError:
        return None


def idle_real(seconds: float, py_spy: Path | None = None) -> dict[str, Any]:
    with contextlib.ExitStack() as stack:
        audio = stack.enter_context(_virtual_audio())
        home = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="voicetui-bench-")))
        env = {**audio, "OPENAI_API_KEY": "", "OPENAI_BASE_URL": ""}
        env |= stack.enter_context(_named_threads())
        env |= {f"XDG_{d}_HOME": str(home / d.lower()) for d in ("CONFIG", "DATA", "STATE")}
        cmd = [sys.executable, "-m", "voicetui", "--mode", "local"]
        tmux = stack.enter_context(TmuxSession(cmd, width=SIZE[0], height=SIZE[1], env=env))
        started = time.monotonic()
        tmux.wait_for(_ready, timeout=300, interval=0.25)
        loaded = time.monotonic() - started
        time.sleep(3.0)  # past the first seconds after loading
        result = _measure_cpu(tmux.program_pid(), seconds)
        if py_spy is not None:  # after the measurement: sampling costs the target a little
            _py_spy(tmux.program_pid(), seconds, py_spy)
            result["py_spy"] = str(py_spy)
        result["models_loaded_s"] = round(loaded, 1)
        result["exit_status"] = _quit(tmux)
        return result


def _py_spy(pid: int, seconds: float, out: Path) -> None:
    """Sample every thread (without pausing it) into a collapsed-stacks file."""
    exe = shutil.which("py-spy")
    if exe is None:
        raise SystemExit("--py-spy needs py-spy on PATH (pip install py-spy)")
    cmd = [exe, "record", "--nonblocking", "--threads", "-r", "100"]
    cmd += ["-d", str(int(seconds)), "-p", str(pid), "--format", "raw", "-o", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"py-spy failed: {(proc.stderr or proc.stdout).strip()[-500:]}")


def _ready(screen: str) -> bool:
    return "oading models" not in screen and "● listening" in screen


@contextlib.contextmanager
def _child_session(
    scenario: str, args: argparse.Namespace, result: Path, gc_tuned: bool = False
) -> Iterator[TmuxSession]:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", scenario]
    cmd += ["--turns", str(args.turns), "--rate", str(args.rate), "--result", str(result)]
    cmd += ["--gc", "tuned" if gc_tuned else "default"]
    with (
        _named_threads() as env,
        TmuxSession(shlex.join(cmd), width=SIZE[0], height=SIZE[1], cwd=ROOT, env=env) as tmux,
    ):
        yield tmux


def idle_fake(args: argparse.Namespace) -> dict[str, Any]:
    with (
        tempfile.TemporaryDirectory() as tmp,
        _child_session("idle-fake", args, Path(tmp) / "r.json") as tmux,
    ):
        tmux.wait_for("● listening", timeout=60)
        time.sleep(2.0)
        result = _measure_cpu(tmux.program_pid(), args.seconds)
        result["exit_status"] = _quit(tmux)
        return result


def _muted(screen: str) -> bool | None:
    for line in screen.splitlines():
        if "Mute " in line and "F2" in line:
            return "muted" in line
    return None


def appending(scenario: str, args: argparse.Namespace, gc_tuned: bool) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        result_path = Path(tmp) / "r.json"
        latencies: list[float] = []
        during: list[float] = []
        lost: list[str] = []
        with _child_session(scenario, args, result_path, gc_tuned) as tmux:
            tmux.wait_for("● listening", timeout=60)
            pid = tmux.program_pid()
            cpu_before, t0 = _cpu_ticks(pid)["total"], time.monotonic()
            last_turn = f"Turn {args.turns - 1}."
            done_at: float | None = None
            deadline = time.monotonic() + args.timeout
            while time.monotonic() < deadline:
                state = _muted(tmux.capture())
                tmux.send_keys("F2")
                pressed = time.perf_counter()
                while True:
                    screen = tmux.capture()
                    now = _muted(screen)
                    if now is not None and now != state:
                        latencies.append(time.perf_counter() - pressed)
                        if done_at is None:
                            during.append(latencies[-1])
                        break
                    if time.perf_counter() - pressed > LOST_AFTER:
                        lost.append(screen)
                        break
                if done_at is None and last_turn in screen:
                    done_at = time.monotonic()
                if done_at is not None and time.monotonic() - done_at > 3.0:
                    break  # a few presses after the end too
                time.sleep(random.uniform(0.15, 0.35))
            cpu = 100.0 * (_cpu_ticks(pid)["total"] - cpu_before) / TICK / (time.monotonic() - t0)
            status = _quit(tmux)
        child = json.loads(result_path.read_text())
    marks = child["marks"]
    start = marks.get("emit_start")
    frames = [d for t, d in child["frames"] if start is not None and t >= start]
    handled = marks.get("handled")
    return {
        "turns": args.turns,
        "events": args.turns * 13,
        "emit_s": _r(marks.get("emit_end", 0) - start if start else None),
        "appended_s": _r(handled - start if handled and start else None),
        "frames": len(frames),
        "frame_p50_ms": _ms(_pct(frames, 50)),
        "frame_p95_ms": _ms(_pct(frames, 95)),
        "frame_max_ms": _ms(max(frames) if frames else None),
        "key_presses": len(latencies),
        "key_presses_while_appending": len(during),
        "key_p50_ms": _ms(_pct(latencies, 50)),
        "key_p95_ms": _ms(_pct(latencies, 95)),
        "key_max_ms": _ms(max(latencies) if latencies else None),
        "key_presses_lost": len(lost),
        "lost_screens": lost[:2],
        "cpu_pct": round(cpu, 1),
        "exit_status": status,
    }


def _pct(values: list[float], p: float) -> float | None:
    if not values:
        return None
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(p) - 1]


def _ms(v: float | None) -> float | None:
    return None if v is None else round(v * 1000, 1)


def _r(v: float | None) -> float | None:
    return None if v is None else round(v, 2)


# --- report ------------------------------------------------------------------------------------
def _table(results: dict[str, Any], load: str) -> str:
    lines = [f"machine: {os.cpu_count()} cores, load average before: {load}", ""]
    for name in ("idle-real", "idle-fake"):
        r = results.get(name)
        if r is None:
            continue
        verdict = "ok" if r["cpu_pct"] <= IDLE_TARGET else "OVER"
        extra = f", models loaded in {r['models_loaded_s']} s" if "models_loaded_s" in r else ""
        lines.append(
            f"{name:10} CPU {r['cpu_pct']:5.1f} % of one core over {r['seconds']} s "
            f"(target ≤ {IDLE_TARGET:g} %: {verdict}){extra}"
        )
        lines.append("           by thread: " + ", ".join(f"{n} {v} %" for n, v in r["threads"]))
    rows = [n for n in results if n.startswith(("steady", "burst"))]
    if rows:
        lines.append("")
        head = ("", "append s", "frames", "frame p50/p95/max ms", "key p50/p95/max ms",
                "presses", "CPU %")  # fmt: skip
        lines.append(f"{head[0]:16}{head[1]:>10}{head[2]:>8}  {head[3]:>22}  {head[4]:>20}"
                     f"{head[5]:>9}{head[6]:>7}")  # fmt: skip
        for n in rows:
            r = results[n]
            frame = f"{r['frame_p50_ms']}/{r['frame_p95_ms']}/{r['frame_max_ms']}"
            key = f"{r['key_p50_ms']}/{r['key_p95_ms']}/{r['key_max_ms']}"
            lines.append(
                f"{n:16}{r['appended_s']!s:>10}{r['frames']:>8}  {frame:>22}  {key:>20}"
                f"{r['key_presses']:>9}{r['cpu_pct']:>7}"
            )
        lines.append(
            f"({results[rows[0]]['turns']} turns, {results[rows[0]]['events']} events; "
            f"key target p95 ≤ {KEY_TARGET * 1000:g} ms)"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--only", default=",".join(SCENARIOS), help="comma-separated scenarios")
    parser.add_argument("--seconds", type=float, default=30.0, help="idle CPU window (30)")
    parser.add_argument(
        "--py-spy",
        type=Path,
        default=None,
        help="idle-real: after measuring, sample the app with py-spy into this file",
    )
    parser.add_argument("--turns", type=int, default=5000)
    parser.add_argument("--rate", type=float, default=250.0, help="steady: turns/s (250)")
    parser.add_argument("--timeout", type=float, default=300.0, help="per scenario (300)")
    parser.add_argument(
        "--gc",
        choices=["default", "tuned", "both"],
        default="both",
        help="steady/burst with Python's default garbage collector, with the proposed tuning "
        f"(gc.freeze() after startup, gc.set_threshold{GC_TUNED}), or both side by side",
    )
    parser.add_argument("--child", choices=SCENARIOS, help=argparse.SUPPRESS)
    parser.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        assert args.result is not None
        return _child(args.child, args.turns, args.rate, args.result, args.gc == "tuned")
    wanted = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = set(wanted) - set(SCENARIOS)
    if unknown:
        parser.error(f"unknown scenarios: {', '.join(sorted(unknown))}")
    load = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    results: dict[str, Any] = {}
    for name in wanted:
        if name in ("idle-real", "idle-fake"):
            print(f"… {name}", file=sys.stderr, flush=True)
            results[name] = (
                idle_real(args.seconds, args.py_spy) if name == "idle-real" else idle_fake(args)
            )
        else:
            for tuned in {"default": [False], "tuned": [True], "both": [False, True]}[args.gc]:
                label = f"{name} gc-tuned" if tuned else name
                print(f"… {label}", file=sys.stderr, flush=True)
                results[label] = appending(name, args, tuned)
    results["load_before"] = load
    results["load_after"] = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        print(_table(results, load))
        print(f"load average after: {results['load_after']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
