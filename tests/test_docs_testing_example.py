"""docs/testing-agents.md's example runs as written (and passes)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[1] / "docs" / "testing-agents.md"


def _example() -> str:
    blocks = re.findall(r"```python\n(# test_weather_agent\.py\n.*?)```", DOC.read_text(), re.S)
    assert len(blocks) == 1, "the example of docs/testing-agents.md is missing"
    return blocks[0]


@pytest.mark.looptime
async def test_the_documented_timeline_example_passes() -> None:
    namespace: dict[str, object] = {"__name__": "test_weather_agent"}
    exec(compile(_example(), str(DOC), "exec"), namespace)
    test = namespace["test_the_user_interrupts_the_forecast"]
    await test()  # type: ignore[operator]
