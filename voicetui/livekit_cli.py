"""``voicetui livekit-agent PATH.py [-- ARGS]``: a LiveKit Agents agent file in voicetui, which
plays the part of ``lk agent console`` (see docs/livekit-agents.md)."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from typing import Any

from .runtime.livekit import LiveKitAgentRuntime
from .runtime.log_capture import LogCapture

RuntimeFactory = Callable[[Any, LogCapture | None], LiveKitAgentRuntime]

COMMAND = "livekit-agent"


def add_livekit_parser(
    sub: Any, settings_flags: Callable[[argparse.ArgumentParser], None]
) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = sub.add_parser(
        COMMAND,
        help="run a LiveKit Agents agent file with voicetui as its console "
        "(what `lk agent console` does)",
        description="Starts `PYTHON -m livekit.agents console PATH.py --connect-addr ...` and "
        "talks to it: mic/speaker (--mode local) or typed text (--mode text), recording, the "
        "Tools and Latency tabs. Arguments after `--` go to the agent.",
        usage="voicetui livekit-agent PATH.py [options] [-- AGENT_ARGS...]",
    )
    parser.add_argument("agent_file", metavar="PATH.py", help="the file with your AgentServer")
    parser.add_argument(
        "--python",
        metavar="PYTHON",
        help="the Python that has livekit-agents installed (default: this one)",
    )
    S = argparse.SUPPRESS
    parser.add_argument("--headless", action="store_true", default=S, help="no TUI")
    parser.add_argument("--json", action="store_true", default=S, help="with --headless: JSON")
    settings_flags(parser)
    return parser


def split_agent_args(argv: Sequence[str]) -> tuple[list[str], list[str]]:
    """``voicetui livekit-agent PATH.py ... -- ARGS``: voicetui's arguments, and the agent's."""
    argv = list(argv)
    if COMMAND in argv and "--" in argv[argv.index(COMMAND) :]:
        cut = argv.index("--", argv.index(COMMAND))
        return argv[:cut], argv[cut + 1 :]
    return argv, []


def runtime_factory(args: argparse.Namespace, agent_args: Sequence[str]) -> RuntimeFactory:
    def make(settings: Any, capture: LogCapture | None) -> LiveKitAgentRuntime:
        return LiveKitAgentRuntime(
            args.agent_file,
            python=args.python,
            extra_args=agent_args,
            mode=settings.mode if settings.mode in ("text", "local") else "local",
            record_dir=settings.record_dir,
            log_capture=capture,
            input_device=settings.input_device,
            output_device=settings.output_device,
            echo_cancellation=settings.echo_cancellation,
        )

    return make
