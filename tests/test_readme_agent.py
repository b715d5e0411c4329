"""The README's "Your own agent" example loads through ``--agent`` and works as described."""

from __future__ import annotations

import re
from pathlib import Path

from voicetui.agent_loader import load_agent
from voicetui.agents import AgentSession
from voicetui.agents.testing import FakeLLM, FakeLLMResponse, FakeToolCall

README = Path(__file__).resolve().parents[1] / "README.md"


def _example() -> str:
    blocks = re.findall(r"```python\n(# weather_agent\.py\n.*?)```", README.read_text(), re.S)
    assert len(blocks) == 1, "the README's weather_agent.py example is missing"
    return blocks[0]


async def test_readme_agent_example(tmp_path: Path) -> None:
    path = tmp_path / "weather_agent.py"
    path.write_text(_example())
    agent = load_agent(f"{path}:Weather")()
    llm = FakeLLM(
        [
            FakeLLMResponse("Hello! Want a forecast?"),
            FakeLLMResponse(tool_calls=[FakeToolCall("get_weather", {"city": "Paris"})]),
            FakeLLMResponse("Sunny, 21 in Paris."),
            FakeLLMResponse(tool_calls=[FakeToolCall("get_weather", {"city": " "})]),
            FakeLLMResponse("Which city?"),
        ]
    )
    session: AgentSession[None] = AgentSession(llm=llm)
    await session.start(agent)
    try:
        first = await session.run(user_input="Weather in Paris?")
        greeting = first.expect.next_event().is_message(role="assistant")  # on_enter's
        assert greeting.item.text_content == "Hello! Want a forecast?"
        first.expect.next_event().is_function_call(name="get_weather")
        first.expect.next_event().is_function_call_output(output="sunny and 21 degrees in Paris")
        first.expect.next_event().is_message(role="assistant")
        second = await session.run(user_input="Weather?")
        second.expect.next_event().is_function_call(name="get_weather")
        second.expect.next_event().is_function_call_output(output="which city?", is_error=True)
    finally:
        await session.aclose()
