"""Statistics over worker results, the summary table and the machine description."""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
from typing import Any


def percentile(values: list[float], q: float) -> float:
    """Linear-interpolated percentile (q in 0..100)."""
    if not values:
        return float("nan")
    s = sorted(values)
    pos = (len(s) - 1) * q / 100
    lo = int(pos)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


def run_stats(run: dict[str, Any]) -> dict[str, Any]:
    """Per-run numbers: added latency p50/p95 (ms) over the measured turns, CPU per turn (ms)."""
    warm = run["timings"]["warmup_turns"]
    added = [
        t["added"] * 1000 for t in run["turns"] if t["turn"] >= warm and t["added"] is not None
    ]
    missing = sum(1 for t in run["turns"] if t["added"] is None)
    turns = max(1, run["turns_total"])
    return {
        "sessions": run["sessions"],
        "p50_ms": percentile(added, 50),
        "p95_ms": percentile(added, 95),
        "max_ms": max(added) if added else float("nan"),
        "samples": len(added),
        "missing_replies": missing,
        "cpu_ms_per_turn": run["cpu_seconds"] * 1000 / turns,
        "cpu_util": run["cpu_seconds"] / run["wall_seconds"] if run["wall_seconds"] else 0.0,
        "rss_peak_mb": run["rss_peak_kb"] / 1024,
        "rss_live_mb": run["rss_live_kb"] / 1024,
        "rss_before_mb": run["rss_before_kb"] / 1024,
        "loop_lag_p99_ms": (run["loop_lag_p99"] or 0.0) * 1000,
        "errors": len(run["errors"]),
        # (runs before GC pauses were recorded have none)
        "gc_collections": len(run.get("gc_pauses", [])),
        "gc_pause_max_ms": max((p["seconds"] for p in run.get("gc_pauses", [])), default=0.0)
        * 1000,
        "gc_gen2_collections": sum(1 for p in run.get("gc_pauses", []) if p["generation"] == 2),
    }


def median_stats(stats: list[dict[str, Any]]) -> dict[str, Any]:
    keys = [k for k, v in stats[0].items() if isinstance(v, int | float)]
    out: dict[str, Any] = {k: statistics.median(s[k] for s in stats) for k in keys}
    out["runs"] = len(stats)
    return out


def _sh(cmd: list[str]) -> str:
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def machine() -> dict[str, Any]:
    model = ""
    for line in _sh(["lscpu"]).splitlines():
        if line.startswith("Model name:"):
            model = line.split(":", 1)[1].strip()
    return {
        "cpu_model": model or platform.processor(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "kernel": platform.release(),
        "loadavg": os.getloadavg(),
    }


def fmt(v: float, digits: int = 1) -> str:
    return "n/a" if v != v else f"{v:.{digits}f}"  # (NaN check)


def table(summary: dict[str, Any], frameworks: list[str]) -> str:
    """The headline table as Markdown."""
    vt, lk = frameworks
    s = summary
    rows = [
        ("added latency p50, 1 session (ms)", "p50_ms", 1, 1),
        ("added latency p95, 1 session (ms)", "p95_ms", 1, 1),
    ]
    lines = [
        f"| metric | {vt} | {lk} | {vt}/{lk} |",
        "|---|---:|---:|---:|",
    ]

    def row(label: str, a: float, b: float, digits: int = 1) -> None:
        ratio = a / b if b and b == b and a == a else float("nan")
        lines.append(f"| {label} | {fmt(a, digits)} | {fmt(b, digits)} | {fmt(ratio, 2)} |")

    per_n = s["per_sessions"]
    for label, key, n, _ in rows:
        if str(n) in per_n.get(vt, {}) and str(n) in per_n.get(lk, {}):
            row(label, per_n[vt][str(n)][key], per_n[lk][str(n)][key])
    for n in sorted({int(k) for k in per_n.get(vt, {})} & {int(k) for k in per_n.get(lk, {})}):
        a, b = per_n[vt][str(n)], per_n[lk][str(n)]
        if n != 1:
            row(f"added latency p50, {n} sessions (ms)", a["p50_ms"], b["p50_ms"])
            row(f"added latency p95, {n} sessions (ms)", a["p95_ms"], b["p95_ms"])
        row(
            f"CPU per turn, {n} session{'s' if n > 1 else ''} (ms)",
            a["cpu_ms_per_turn"],
            b["cpu_ms_per_turn"],
        )
        floor = per_n.get("null", {}).get(str(n))
        if floor is not None:
            f = floor["cpu_ms_per_turn"]
            row(
                f"CPU per turn added to the no-framework floor of {fmt(f)} ms, "
                f"{n} session{'s' if n > 1 else ''} (ms)",
                a["cpu_ms_per_turn"] - f,
                b["cpu_ms_per_turn"] - f,
            )
        row(f"peak RSS, {n} session{'s' if n > 1 else ''} (MB)", a["rss_peak_mb"], b["rss_peak_mb"])
        if "gc_pause_max_ms" in a and "gc_pause_max_ms" in b:
            row(
                f"longest GC pause, {n} session{'s' if n > 1 else ''} (ms)",
                a["gc_pause_max_ms"],
                b["gc_pause_max_ms"],
            )
    for n, (a, b) in sorted(s.get("rss_per_session_mb", {}).items(), key=lambda kv: int(kv[0])):
        row(f"RSS per extra session, at {n} sessions (MB)", a, b, 2)
    sweep = s.get("max_sessions_per_core")
    if sweep:
        a, b = sweep.get(vt), sweep.get(lk)
        lines.append(
            f"| max sessions on one core (p95 ≤ 20 ms) | {a if a is not None else 'n/a'} "
            f"| {b if b is not None else 'n/a'} | "
            f"{fmt(a / b, 2) if isinstance(a, int) and isinstance(b, int) and b else 'n/a'} |"
        )
    return "\n".join(lines)
