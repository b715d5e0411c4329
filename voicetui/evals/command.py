"""``voicetui eval FILE.yaml...``: the command line, the progress bar and the exit code.

Exit codes: 0 every turn passed, 1 a turn failed (or the models failed to load), 2 a usage
problem (a scenario file that does not validate, an agent that does not load, missing models).
"""

from __future__ import annotations

import argparse
import asyncio
import fnmatch
from pathlib import Path
from typing import Any, TextIO

__all__ = ["add_eval_parser", "eval_main"]

S = argparse.SUPPRESS


def add_eval_parser(sub: Any) -> None:
    p = sub.add_parser(
        "eval",
        help="run scenario files against an agent, headless, and score every turn",
        description="Run scenarios (YAML) against an agent with the configured models, headless: "
        "tool calls, replies, an LLM judge, latency and interruptions, per turn.",
    )
    p.add_argument("files", nargs="+", type=Path, metavar="FILE.yaml", help="scenario files")
    p.add_argument("--agent", metavar="PATH.py[:NAME]", default=S, help="the agent to test")
    p.add_argument(
        "--mode",
        dest="eval_mode",
        choices=["text", "audio", "both"],
        default="text",
        help="text: typed turns; audio: spoken through VAD, STT and turn-taking; both",
    )
    p.add_argument("--repeat", type=int, default=1, metavar="N", help="run everything N times")
    p.add_argument("--junit", type=Path, metavar="OUT.xml", help="write JUnit XML")
    p.add_argument("--json", dest="json_out", type=Path, metavar="OUT.json", help="write JSON")
    p.add_argument(
        "-k",
        dest="pattern",
        metavar="PATTERN",
        help="only scenarios whose name contains PATTERN (or matches it as a glob)",
    )
    p.add_argument("--all", dest="all_turns", action="store_true", help="list passed turns too")
    p.add_argument(
        "--speed",
        type=float,
        default=2.0,
        help="audio mode: the user's speech is sent this many times faster than real time",
    )
    p.add_argument(
        "--voice",
        dest="user_voice",
        choices=["auto", "piper", "espeak"],
        default="auto",
        help="audio mode: who speaks the text turns (auto: Piper if installed, else espeak-ng)",
    )
    models = p.add_argument_group("models (as for the app)")
    for name in ("stt", "llm", "tts", "vad"):
        models.add_argument(f"--{name}", default=S)
    models.add_argument("--llm-model", default=S, metavar="NAME_OR_GGUF")


def _selected(name: str, pattern: str | None) -> bool:
    if not pattern:
        return True
    return pattern.casefold() in name.casefold() or fnmatch.fnmatch(name, pattern)


def eval_main(args: argparse.Namespace, settings: Any, out: TextIO, err: TextIO) -> int:
    from rich.console import Console

    from ..agent_loader import AgentLoadError, load_agent
    from ..plugins.selection import check_requirements, resolve
    from .source import EvalFileError, LoadedScenario, load_suite

    if args.repeat < 1:
        err.write("voicetui: --repeat needs a number >= 1\n")
        return 2
    scenarios: list[LoadedScenario] = []
    for path in args.files:
        try:
            scenarios += load_suite(path)
        except EvalFileError as e:
            err.write(f"voicetui: {e}\n")
            return 2
    scenarios = [s for s in scenarios if _selected(s.scenario.name, args.pattern)]
    if not scenarios:
        err.write(f"voicetui: no scenario matches -k {args.pattern!r}\n")
        return 2
    factory = None
    if settings.agent:
        try:
            factory = load_agent(settings.agent)
        except AgentLoadError as e:
            err.write(f"voicetui: --agent: {e}\n")
            return 2
    modes = ["text", "audio"] if args.eval_mode == "both" else [args.eval_mode]
    resolved = resolve(settings.models)
    if "audio" not in modes:  # text turns need the LLM only
        resolved = resolve(settings.models.model_copy(update={"stt": "none", "tts": "none"}))
    if problems := check_requirements(resolved):
        for problem in problems:
            err.write(f"voicetui: {problem}\n")
        return 2
    console = Console(file=out, width=max(100, Console(file=out).width))
    try:
        results = asyncio.run(
            _run(scenarios, modes, args, resolved, settings, factory, Console(file=err))
        )
    except KeyboardInterrupt:
        err.write("voicetui: interrupted\n")
        return 130
    except RuntimeError as e:
        err.write(f"voicetui: {e}\n")
        return 1
    from .report import print_table, write_json, write_junit

    print_table(results, console, all_turns=args.all_turns)
    if args.junit is not None:
        write_junit(results, args.junit)
    if args.json_out is not None:
        write_json(results, args.json_out)
    return 0 if all(r.passed for r in results) else 1


async def _run(
    scenarios: list[Any],
    modes: list[Any],
    args: argparse.Namespace,
    resolved: Any,
    settings: Any,
    factory: Any,
    console: Any,
) -> list[Any]:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from .runner import TurnResult, load_models, run_scenario

    session_kwargs = settings.turn.session_kwargs()
    models = await load_models(resolved, session_kwargs, factory, set(modes))
    if "audio" in modes:
        from .speech import TurnAudioError, resolve_voice

        try:
            models.voice = resolve_voice(args.user_voice)
        except TurnAudioError as e:
            raise RuntimeError(str(e)) from None
        console.print(f"audio turns spoken by {models.voice}")
    total = sum(len(s.scenario.turns) for s in scenarios) * len(modes) * args.repeat
    results: list[TurnResult] = []
    failed = 0
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[failed]} failed"),
        console=console,
        transient=True,
    ) as progress:
        task = progress.add_task("eval", total=total, failed=0)

        def on_turn(result: TurnResult) -> None:
            nonlocal failed
            failed += not result.passed
            if not result.passed:
                progress.console.print(
                    f"[red]FAIL[/] {result.scenario} #{result.turn} ({result.mode} "
                    f"{result.run}): {result.why}"
                )
            progress.update(task, advance=1, failed=failed)
            if not console.is_terminal and result.turn == 1:  # no bar to see: a line a scenario
                done = int(progress.tasks[0].completed)
                console.print(f"{done}/{total} {result.mode} {result.run}: {result.scenario}")

        try:
            for run in range(1, args.repeat + 1):
                for mode in modes:
                    for loaded in scenarios:
                        progress.update(task, description=f"{mode} {run}: {loaded.scenario.name}")
                        results += await run_scenario(
                            loaded, mode, models, factory, run=run, on_turn=on_turn
                        )
        finally:
            for model in (models.models.llm, models.models.stt, models.models.tts):
                if model is not None and hasattr(model, "aclose"):
                    await model.aclose()
    return results
