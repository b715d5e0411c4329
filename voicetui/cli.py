"""The ``voicetui`` command."""

from __future__ import annotations

import argparse
import sys

from voicetui import __version__


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="voicetui",
        description="Talk to, debug and measure voice agents from your terminal.",
    )
    parser.add_argument("--version", action="version", version=f"voicetui {__version__}")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    parser.parse_args(argv)
    print(
        "voicetui: the framework is in place (voicetui.agents); the terminal app is not built yet.\n"
        "Try: python scripts/demo_text_conversation.py",
        file=sys.stderr,
    )
    return 0
