"""Regenerate docs/screenshot-livekit.svg: voicetui as the console of a real LiveKit Agents agent
(tests/fixtures/livekit_agents/weather_agent.py, its LLM the local OpenAI-compatible test
server) after a typed turn with a tool call.

    .venv/bin/python scripts/make_livekit_screenshot.py [--python .venv-lk/bin/python]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.fake_runtime import settle  # noqa: E402
from tests.openai_test_server import OpenAITestServer, Reply, ScriptedToolCall  # noqa: E402
from voicetui.runtime.livekit import LiveKitAgentRuntime  # noqa: E402
from voicetui.tui.app import VoiceTUIApp  # noqa: E402

AGENT = ROOT / "tests" / "fixtures" / "livekit_agents" / "weather_agent.py"


async def screenshot(python: str, size: tuple[int, int]) -> str:
    server = OpenAITestServer(strict_content=False)
    url = await server.start()
    os.environ["OPENAI_BASE_URL"], os.environ["OPENAI_API_KEY"] = url, "sk-test"
    server.add(
        Reply(tool_calls=[ScriptedToolCall("get_weather", {"city": "Paris"})]),
        Reply(
            text="It's sunny in Paris right now, 21 degrees. A good day for a walk by the Seine."
        ),
    )
    runtime = LiveKitAgentRuntime(AGENT, python=python, mode="text")
    app = VoiceTUIApp(runtime, bridge_interval=0)
    try:
        async with app.run_test(size=size) as pilot:
            deadline = time.monotonic() + 60
            while not runtime.session.running:
                assert time.monotonic() < deadline, "the agent did not start"
                await pilot.pause(0.1)
            await pilot.click("#talk")
            await pilot.press(*"What's the weather like in Paris?", "enter")
            while not server.received() or len(server.received()) < 2:
                await pilot.pause(0.1)
            await pilot.pause(1.5)
            await settle(pilot, rounds=5)
            return app.export_screenshot(title="voicetui livekit-agent weather_agent.py")
    finally:
        runtime.stop().result(30)
        runtime.join(10)
        await server.aclose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--python", default=str(ROOT / ".venv-lk" / "bin" / "python"))
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshot-livekit.svg")
    args = parser.parse_args(argv)
    svg = asyncio.run(screenshot(args.python, (120, 34)))
    args.out.write_text(svg, encoding="utf-8")
    print(f"{args.out} ({len(svg) // 1024} KiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
