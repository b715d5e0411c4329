"""A scripted text conversation with a tool call, end to end through AgentSession; prints every
session event. Run: .venv/bin/python scripts/demo_text_conversation.py"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Annotated

from pydantic import Field

from voicetui.agents import Agent, AgentSession, RunContext, function_tool
from voicetui.agents.testing import FakeLLM, FakeLLMResponse, FakeTextOutput, FakeToolCall

EVENTS = [
    "agent_state_changed",
    "user_state_changed",
    "speech_created",
    "conversation_item_added",
    "function_tools_executed",
    "metrics_collected",
    "error",
    "close",
]


class Assistant(Agent):
    def __init__(self) -> None:
        super().__init__(instructions="You are a helpful assistant. Answer in one sentence.")

    @function_tool
    async def get_time(
        self,
        ctx: RunContext[None],
        timezone: Annotated[str, Field(description="IANA timezone, e.g. Europe/Paris")] = "UTC",
    ) -> dict[str, str]:
        """Get the current time in a timezone."""
        return {"timezone": timezone, "time": datetime(2026, 11, 24, 14, 5).strftime("%H:%M")}


def describe(ev: object) -> str:
    t = getattr(ev, "type", "?")
    if t == "agent_state_changed":
        return f"{ev.old_state} -> {ev.new_state}"  # type: ignore[attr-defined]
    if t == "speech_created":
        return f"source={ev.source} id={ev.speech_id}"  # type: ignore[attr-defined]
    if t == "conversation_item_added":
        item = ev.item  # type: ignore[attr-defined]
        return f"{getattr(item, 'role', item.type)}: {getattr(item, 'text_content', '')!r}"
    if t == "function_tools_executed":
        return "; ".join(
            f"{x.call.name}({x.call.arguments}) -> {x.output.output} [{x.duration * 1000:.1f} ms]"
            for x in ev.executions  # type: ignore[attr-defined]
        )
    if t == "metrics_collected":
        m = ev.metrics  # type: ignore[attr-defined]
        return f"{m.type} ttft={getattr(m, 'ttft', None)}"
    return ev.model_dump_json(exclude={"created_at"}) if hasattr(ev, "model_dump_json") else str(ev)


async def main() -> None:
    llm = FakeLLM(
        [
            FakeLLMResponse(
                input="What time is it in Paris?",
                tool_calls=[FakeToolCall("get_time", {"timezone": "Europe/Paris"})],
            ),
            FakeLLMResponse(content="It is 14:05 in Paris.", ttft=0.05),
            FakeLLMResponse(input="Thanks!", content="You're welcome.", ttft=0.05),
        ]
    )
    session: AgentSession[None] = AgentSession(llm=llm)
    session.output.transcription = FakeTextOutput()
    for name in EVENTS:
        session.on(name, lambda ev, name=name: print(f"  [{name}] {describe(ev)}"))
    await session.start(Assistant())
    for text in ["What time is it in Paris?", "Thanks!"]:
        print(f"user> {text}")
        result = await session.run(user_input=text)
        print(f"agent> {result.final_output}")
    await session.aclose()


if __name__ == "__main__":
    asyncio.run(main())
