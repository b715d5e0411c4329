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

While turns are appended, F2 (mute) is pressed every ~250 ms through tmux. Key→screen is timed
in the app (``--keys app``, the default: from Textual's input thread reading F2 to the first
frame written after the action ran; split into queue and paint), or from outside by polling
``capture-pane`` until the screen shows the change (``--keys tmux``: tmux and the polling add
5–10 ms and load the machine). The app also reports its frame times, GC pauses and runtime
slices, and when the last turn was handled. ``--trees /work/main,.`` runs other checkouts side
by side, alternating (``--repeat N``). Targets: idle ≤ 5 % of one core; key→screen p95 ≤ 60 ms
(issue 21).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
TREE = Path(os.environ.get("VOICETUI_BENCH_TREE", ROOT))
"""The source tree the child runs (``--trees``: another checkout's voicetui and tests)."""
if str(TREE) not in sys.path:
    sys.path.insert(0, str(TREE))

from tests.tmux_driver import TmuxSession  # noqa: E402

SIZE = (120, 40)
SCENARIOS = ("idle-real", "idle-fake", "steady", "burst")
TICK = os.sysconf("SC_CLK_TCK")
IDLE_TARGET = 5.0
KEY_TARGET = 0.060
LOST_AFTER = 10.0
"""A press whose change has not shown after this long is counted as lost."""


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
    scenario: str, args: argparse.Namespace, result: Path, gc_tuned: bool = False, tree: Path = ROOT
) -> Iterator[TmuxSession]:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", scenario]
    cmd += ["--turns", str(args.turns), "--rate", str(args.rate), "--result", str(result)]
    cmd += ["--gc", "tuned" if gc_tuned else "default"]
    with _named_threads() as env:
        # the tree's voicetui and tests first; no bytecode written into another checkout
        env |= {"VOICETUI_BENCH_TREE": str(tree), "PYTHONDONTWRITEBYTECODE": "1"}
        env["PYTHONPATH"] = os.pathsep.join((str(tree), env["PYTHONPATH"]))
        with TmuxSession(shlex.join(cmd), width=SIZE[0], height=SIZE[1], cwd=tree, env=env) as tmux:
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


def appending(
    scenario: str, args: argparse.Namespace, gc_tuned: bool, tree: Path = ROOT
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        result_path = Path(tmp) / "r.json"
        latencies: list[float] = []
        during: list[float] = []
        lost: list[str] = []
        with _child_session(scenario, args, result_path, gc_tuned, tree) as tmux:
            tmux.wait_for("● listening", timeout=60)
            pid = tmux.program_pid()
            cpu_before, t0 = _cpu_ticks(pid)["total"], time.monotonic()
            if args.keys == "app":
                _press_keys(tmux, f"Turn {args.turns - 1}.", args.timeout)
            else:
                _press_and_poll(tmux, f"Turn {args.turns - 1}.", args, latencies, during, lost)
            cpu = 100.0 * (_cpu_ticks(pid)["total"] - cpu_before) / TICK / (time.monotonic() - t0)
            status = _quit(tmux)
        child = json.loads(result_path.read_text())
        if args.keep is not None:  # the app's own timings, for a closer look
            args.keep.mkdir(parents=True, exist_ok=True)
            shutil.copy(result_path, args.keep / f"{scenario}-{tree.name}-{time.time():.0f}.json")
    marks = child["marks"]
    start = marks.get("emit_start")
    handled = marks.get("handled")
    frames = [d for t, d in child["frames"] if start is not None and t >= start]
    out: dict[str, Any] = {
        "tree": str(tree),
        "turns": args.turns,
        "events": args.turns * 13,
        "emit_s": _r(marks.get("emit_end", 0) - start if start else None),
        "appended_s": _r(handled - start if handled and start else None),
        "frames": len(frames),
        "frame_p50_ms": _ms(_pct(frames, 50)),
        "frame_p95_ms": _ms(_pct(frames, 95)),
        "frame_max_ms": _ms(max(frames) if frames else None),
    }
    if args.keys == "app":
        end = handled if handled is not None else float("inf")
        presses = [p for p in child["presses"] if start is not None and start <= p["read"] < end]
        latencies = [p["shown"] - p["read"] for p in presses]
        during = latencies
        queued = [p["action"] - p["read"] for p in presses]
        painted = [p["shown"] - p["action"] for p in presses]
        out |= {
            "key_queue_p50_ms": _ms(_pct(queued, 50)),
            "key_queue_p95_ms": _ms(_pct(queued, 95)),
            "key_paint_p50_ms": _ms(_pct(painted, 50)),
            "key_paint_p95_ms": _ms(_pct(painted, 95)),
        }
        window = [
            (t, d, g) for t, d, g, *_ in child["gc"] if start is not None and start <= t < end
        ]
        out |= {
            "gc_collections": len(window),
            "gc_full": len([d for _, d, g in window if g == 2]),
            "gc_max_ms": _ms(max((d for _, d, _ in window), default=None)),
            "gc_total_ms": _ms(sum(d for _, d, _ in window)),
        }
    out |= {
        "keys": args.keys,
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
    return out


def _press_keys(tmux: TmuxSession, last_turn: str, timeout: float) -> None:
    """F2 every 150–350 ms; the app times each press itself (no polling of the screen: a look
    every second or so for the last turn)."""
    done_at: float | None = None
    deadline = time.monotonic() + timeout
    next_look = 0.0
    while time.monotonic() < deadline:
        tmux.send_keys("F2")
        if done_at is None and time.monotonic() >= next_look:
            next_look = time.monotonic() + 1.0
            if last_turn in tmux.capture():
                done_at = time.monotonic()
        if done_at is not None and time.monotonic() - done_at > 3.0:
            break  # a few presses after the end too
        time.sleep(random.uniform(0.15, 0.35))


def _press_and_poll(
    tmux: TmuxSession,
    last_turn: str,
    args: argparse.Namespace,
    latencies: list[float],
    during: list[float],
    lost: list[str],
) -> None:
    """F2, then poll ``capture-pane`` until the screen shows the change (tmux and the polling
    are in the figure, ~5–10 ms)."""
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
                "presses", "CPU %", "queue/paint p95", "GC n/full/max ms")  # fmt: skip
        lines.append(f"{head[0]:24}{head[1]:>9}{head[2]:>7}  {head[3]:>20}  {head[4]:>18}"
                     f"{head[5]:>8}{head[6]:>6}  {head[7]:>15}  {head[8]}")  # fmt: skip
        for n in rows:
            r = results[n]
            frame = f"{r['frame_p50_ms']}/{r['frame_p95_ms']}/{r['frame_max_ms']}"
            key = f"{r['key_p50_ms']}/{r['key_p95_ms']}/{r['key_max_ms']}"
            split = f"{r.get('key_queue_p95_ms')}/{r.get('key_paint_p95_ms')}"
            gcs = f"{r.get('gc_collections')}/{r.get('gc_full')}/{r.get('gc_max_ms')}"
            lines.append(
                f"{n:24}{r['appended_s']!s:>9}{r['frames']:>7}  {frame:>20}  {key:>18}"
                f"{r['key_presses']:>8}{r['cpu_pct']:>6}  {split:>15}  {gcs}"
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
        "(gc.freeze() after startup, gc.set_threshold(50_000, 20, 100)), or both side by side",
    )
    parser.add_argument(
        "--keys",
        choices=["app", "tmux"],
        default="app",
        help="key→screen timed in the app (from the input thread reading F2 to the first frame "
        "written after its action; no polling) or from outside by polling tmux's capture-pane",
    )
    parser.add_argument(
        "--trees",
        default=str(ROOT),
        help="steady/burst: comma-separated source trees to run side by side, alternating "
        "(e.g. /work/main,.): each tree's voicetui and tests/fake_runtime.py",
    )
    parser.add_argument("--keep", type=Path, help="steady/burst: keep the app's timings here")
    parser.add_argument("--repeat", type=int, default=1, help="steady/burst: runs per tree (1)")
    parser.add_argument("--child", choices=SCENARIOS, help=argparse.SUPPRESS)
    parser.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        assert args.result is not None
        from bench_tui_child import run_child  # (next to this script)

        return run_child(args.child, args.turns, args.rate, args.result, args.gc == "tuned")
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
            trees = [Path(t).resolve() for t in args.trees.split(",") if t.strip()]
            for run in range(args.repeat):
                for tuned in {"default": [False], "tuned": [True], "both": [False, True]}[args.gc]:
                    for tree in trees:
                        label = f"{name} gc-tuned" if tuned else name
                        label += f" {tree.name}" if len(trees) > 1 else ""
                        label += f" #{run + 1}" if args.repeat > 1 else ""
                        print(f"… {label}", file=sys.stderr, flush=True)
                        results[label] = appending(name, args, tuned, tree)
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
