"""An eval's results as a table on the terminal, JUnit XML (one test case per turn and run) and
JSON."""

from __future__ import annotations

import json
import statistics
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from .runner import EvalMode, TurnResult

__all__ = ["print_table", "summary", "write_json", "write_junit"]


def _e2e(result: TurnResult) -> str:
    e2e = result.outcome.e2e_ms
    return "-" if e2e is None else f"{e2e / 1000:.2f} s"


def summary(results: Sequence[TurnResult]) -> dict[str, Any]:
    """Pass rates per mode and run, and the median e2e per mode."""
    out: dict[str, Any] = {}
    for mode in sorted({r.mode for r in results}):
        of_mode = [r for r in results if r.mode == mode]
        runs = sorted({r.run for r in of_mode})
        per_run = {}
        for run in runs:
            of_run = [r for r in of_mode if r.run == run]
            per_run[run] = sum(r.passed for r in of_run) / len(of_run)
        e2es = [r.outcome.e2e_ms for r in of_mode if r.outcome.e2e_ms is not None]
        out[mode] = {
            "turns": len(of_mode),
            "passed": sum(r.passed for r in of_mode),
            "pass_rate": sum(r.passed for r in of_mode) / len(of_mode),
            "pass_rate_per_run": per_run,
            "median_e2e_ms": statistics.median(e2es) if e2es else None,
        }
    return out


def print_table(results: Sequence[TurnResult], console: Console, *, all_turns: bool) -> None:
    """The turns (failed ones only unless ``all_turns``) and a pass rate per mode and run."""
    table = Table(title="voicetui eval", show_lines=False, expand=True)
    table.add_column("scenario", overflow="fold", ratio=2)
    table.add_column("turn", overflow="fold", ratio=3)
    table.add_column("mode/run", no_wrap=True)
    table.add_column("", no_wrap=True)
    table.add_column("why", overflow="fold", ratio=4)
    table.add_column("e2e", justify="right", no_wrap=True)
    shown = 0
    for r in results:
        if r.passed and not all_turns:
            continue
        shown += 1
        mark = "[green]pass[/]" if r.passed else "[red]FAIL[/]"
        why = r.why
        if r.verdict is not None and r.passed:
            why = f"judge: {r.verdict.reason}"
        table.add_row(r.scenario, f"{r.turn}. {r.label}", f"{r.mode} {r.run}", mark, why, _e2e(r))
    if shown:
        console.print(table)
    for mode, s in summary(results).items():
        per_run = ", ".join(f"run {k}: {v:.1%}" for k, v in s["pass_rate_per_run"].items())
        e2e = s["median_e2e_ms"]
        median = f", median e2e {e2e / 1000:.2f} s" if e2e is not None else ""
        console.print(
            f"{mode}: {s['passed']}/{s['turns']} turns passed ({s['pass_rate']:.1%}; {per_run})"
            f"{median}"
        )


def write_junit(results: Sequence[TurnResult], path: Path) -> None:
    """One ``<testsuite>`` per mode, one ``<testcase>`` per turn and run, a ``<failure>`` with
    the reasons for a failed one."""
    root = ET.Element("testsuites", name="voicetui eval")
    modes: list[EvalMode] = sorted({r.mode for r in results})  # type: ignore[assignment]
    for mode in modes:
        of_mode = [r for r in results if r.mode == mode]
        failures = sum(not r.passed for r in of_mode)
        total_s = sum((r.outcome.e2e_ms or 0) for r in of_mode) / 1000
        suite = ET.SubElement(
            root,
            "testsuite",
            name=f"voicetui eval ({mode})",
            tests=str(len(of_mode)),
            failures=str(failures),
            errors="0",
            time=f"{total_s:.3f}",
        )
        for r in of_mode:
            case = ET.SubElement(
                suite,
                "testcase",
                classname=f"{r.file.stem}.{r.scenario}",
                name=f"turn {r.turn} (run {r.run}): {r.label}",
                time=f"{(r.outcome.e2e_ms or 0) / 1000:.3f}",
            )
            out = ET.SubElement(case, "system-out")
            lines = [f"reply: {r.outcome.reply}"]
            if r.outcome.heard is not None:
                lines.insert(0, f"heard: {r.outcome.heard}")
            lines += [
                f"tool: {u.name}({json.dumps(u.arguments)}) -> {u.output}" for u in r.outcome.tools
            ]
            if r.verdict is not None:
                verdict = "PASS" if r.verdict.passed else "FAIL"
                lines.append(f"judge: {verdict}: {r.verdict.reason}")
            out.text = "\n".join(lines)
            if not r.passed:
                failure = ET.SubElement(case, "failure", message=r.why[:500])
                failure.text = r.why
    ET.indent(root)
    path.write_text(ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n")


def write_json(results: Sequence[TurnResult], path: Path) -> None:
    def one(r: TurnResult) -> dict[str, Any]:
        return {
            "scenario": r.scenario,
            "file": str(r.file),
            "turn": r.turn,
            "label": r.label,
            "mode": r.mode,
            "run": r.run,
            "passed": r.passed,
            "why": r.why,
            "outcome": asdict(r.outcome),
            "checks": [asdict(c) for c in r.checks],
            "verdict": asdict(r.verdict) if r.verdict is not None else None,
        }

    data = {"summary": summary(results), "turns": [one(r) for r in results]}
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
