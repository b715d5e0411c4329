"""Closing the app while the agent speaks (Ctrl-C, SIGTERM, ctrl+q): the reply is in
``events.jsonl`` and ``transcript.md``, with what was said so far, marked interrupted."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

from voicetui.agents import Agent
from voicetui.agents.testing import FakeLLM, FakeLLMResponse
from voicetui.config import Settings
from voicetui.plugins.selection import SessionModels
from voicetui.runtime.api import AgentTranscript
from voicetui.runtime.controller import SessionController

WORDS = " ".join(f"word{i}" for i in range(200))


def test_the_reply_being_spoken_at_close_is_recorded_interrupted(tmp_path: Path) -> None:
    llm = FakeLLM([FakeLLMResponse(input="tell me", content=WORDS, tokens_per_second=20)])
    controller = SessionController(
        Settings(mode="text"),
        agent=Agent(instructions="x"),
        models=SessionModels(stt=None, vad=None, llm=llm, tts=None),
    )
    speaking = threading.Event()

    def on_event(ev: Any) -> None:
        if isinstance(ev, AgentTranscript) and len(ev.text.split()) >= 5:
            speaking.set()

    controller.subscribe(on_event)
    controller.start().result(30)
    directory = Path(controller.start_recording(str(tmp_path)).result(30))
    controller.send_text("tell me").result(30)
    assert speaking.wait(30)
    controller.stop().result(30)
    controller.join(10)

    events = [json.loads(line) for line in (directory / "events.jsonl").read_text().splitlines()]
    replies = [
        e["event"]["item"]
        for e in events
        if e["type"] == "conversation_item_added" and e["event"]["item"].get("role") == "assistant"
    ]
    assert len(replies) == 1
    (reply,) = replies
    said = " ".join(reply["content"]).split()
    assert reply["interrupted"] is True
    assert 5 <= len(said) < 200 and said == WORDS.split()[: len(said)]
    assert "**Agent (interrupted):** word0 word1" in (directory / "transcript.md").read_text()
