"""Regenerate the README's screenshots: the app at 120×40 in the middle of a conversation (a
spoken question, a tool call, the reply, the next question being spoken, the latency rows, the
state panel), drawn by Textual from a scripted session on the fake runtime (tests/fake_runtime.py:
the same app and widgets, deterministic events, a fixed clock).

    .venv/bin/python scripts/make_screenshot.py            # docs/screenshot.svg (dark)
                                                           # + docs/screenshot-light.svg
    .venv/bin/python scripts/make_screenshot.py --size 100x30 --out /tmp/shots
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests import fake_runtime as fr  # noqa: E402
from tests.fake_runtime import FakeRuntime, settle  # noqa: E402
from voicetui.tui.app import VoiceTUIApp  # noqa: E402

THEMES = {"dark": "screenshot.svg", "light": "screenshot-light.svg"}


def conversation() -> list[Any]:
    """Two spoken turns with tool calls, timings like the embedded models' on a laptop, and the
    user starting a third question."""
    tokyo = fr.call("get_time", "call_1", timezone="Asia/Tokyo")
    tip = fr.call("calculate", "call_2", expression="86 * 0.15")
    return [
        fr.mode("local", "LOCAL mic: USB Headset / speaker: USB Headset"),
        fr.status(models="STT whisper tiny.en · LLM qwen2.5-0.5b · TTS piper · VAD silero"),
        fr.agent_state("listening", "initializing"),
        fr.assistant_message("Hi! I can tell the time, do sums, set timers and keep notes."),
        fr.user_state("speaking"),
        fr.transcript("what time is it"),
        fr.transcript("What time is it in Tokyo?", final=True),
        fr.user_state("listening", "speaking"),
        fr.eou(0.41, 0.22, "speech_1"),
        fr.user_message("What time is it in Tokyo?"),
        fr.agent_state("thinking"),
        fr.tools_started(tokyo, speech_id="speech_1"),
        fr.tools_executed(
            fr.execution(tokyo, "09:42 on Thursday 26 November 2026 (Asia/Tokyo)", 0.004),
            speech_id="speech_1",
        ),
        fr.llm(0.38),
        fr.tts(0.17),
        fr.agent_state("speaking", "thinking"),
        fr.assistant_message(
            "It's nine forty-two in the morning in Tokyo, on Thursday.",
            eou=0.41,
            llm=0.38,
            tts=0.17,
            e2e=1.12,
        ),
        fr.agent_state("listening", "speaking"),
        fr.transcript("And what's a fifteen percent tip on eighty-six dollars?", final=True),
        fr.eou(0.52, 0.27, "speech_2"),
        fr.user_message("And what's a 15% tip on 86 dollars?"),
        fr.agent_state("thinking"),
        fr.tools_started(tip, speech_id="speech_2"),
        fr.tools_executed(fr.execution(tip, "86 * 0.15 = 12.9", 0.001), speech_id="speech_2"),
        fr.llm(0.44),
        fr.tts(0.16),
        fr.agent_state("speaking", "thinking"),
        fr.assistant_message(
            "A fifteen percent tip on eighty-six dollars is twelve dollars ninety.",
            eou=0.52,
            llm=0.44,
            tts=0.16,
            e2e=1.27,
        ),
        fr.agent_state("listening", "speaking"),
        fr.user_state("speaking"),
        fr.transcript("set a timer for"),
        fr.levels(-14.0, -60.0),
    ]


async def screenshot(theme: str, size: tuple[int, int]) -> str:
    rt = FakeRuntime()
    app = VoiceTUIApp(rt, theme=theme, clock=lambda: fr.T0 + 125, bridge_interval=0)
    async with app.run_test(size=size) as pilot:
        await settle(pilot)
        rt.emit(*conversation())
        await settle(pilot, rounds=5)
        return app.export_screenshot(title="voicetui")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs", help="directory (docs/)")
    parser.add_argument("--size", default="120x40", help="terminal size, COLSxROWS (120x40)")
    parser.add_argument("--theme", choices=sorted(THEMES), action="append", help="(both)")
    args = parser.parse_args(argv)
    cols, rows = (int(n) for n in args.size.lower().split("x"))
    args.out.mkdir(parents=True, exist_ok=True)
    for theme in args.theme or list(THEMES):
        svg = asyncio.run(screenshot(theme, (cols, rows)))
        path = args.out / THEMES[theme]
        path.write_text(svg, encoding="utf-8")
        print(f"{path} ({len(svg) // 1024} KiB, {cols}x{rows}, {theme})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
