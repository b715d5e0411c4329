"""Running scenarios: one session per scenario (and per run), headless, with the configured
models loaded once and shared.

* text mode: each turn is ``session.run(user_input=...)`` on a session with no audio (no STT,
  no TTS); e2e is the time to the reply's text.
* audio mode: the session has the configured STT, VAD, LLM and TTS; the user's turns reach it
  through a scripted microphone (:mod:`.speech`), so the VAD, the STT and the turn-taking are
  the real ones; the agent's audio plays on a real-time fake speaker; e2e is from the last
  sample of the user's voice to the agent's first audio.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from livekit import rtc

from ..agent_loader import AgentFactory, make_agent
from ..agents.llm import LLM, ChatMessage, FunctionCall, FunctionCallOutput
from ..agents.testing import FakeAudioOutput
from ..agents.voice import AgentSession, ConversationItemAddedEvent
from ..default_agent.notes import NOTES_PATH_ENV
from ..plugins.selection import ResolvedModels, SessionModels, build_models
from .checks import CheckResult, ToolUse, TurnOutcome, check_turn
from .judge import Verdict, judge_reply
from .scenario import Turn
from .source import LoadedScenario
from .speech import ScriptedMicrophone, TurnAudioError, UserVoice, speak, turn_audio

__all__ = ["EvalMode", "EvalModels", "TurnResult", "load_models", "run_scenario"]

EvalMode = Literal["text", "audio"]
"""How an eval turn is given: typed, or spoken through VAD, STT and turn-taking."""

REPLY_TIMEOUT = 90.0
CLOSE_TIMEOUT = 10.0
logger = logging.getLogger("voicetui.evals")
INTERRUPTION = "Wait, stop."


@dataclass
class TurnResult:
    scenario: str
    file: Path
    turn: int
    """1-based."""
    label: str
    mode: EvalMode
    run: int
    outcome: TurnOutcome
    checks: list[CheckResult]
    verdict: Verdict | None = None

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks) and (self.verdict is None or self.verdict.passed)

    @property
    def why(self) -> str:
        reasons = [f"{c.check}: {c.why}" for c in self.checks if not c.passed]
        if self.verdict is not None and not self.verdict.passed:
            reasons.append(f"judge: {self.verdict.reason}")
        return "; ".join(reasons)


@dataclass
class EvalModels:
    resolved: ResolvedModels
    models: SessionModels
    session_kwargs: dict[str, Any] = field(default_factory=dict)
    voice: UserVoice = "auto"
    """Who speaks text turns in audio mode (:func:`.speech.resolve_voice`)."""

    @property
    def judge(self) -> LLM | None:
        return self.models.llm


async def load_models(
    resolved: ResolvedModels,
    session_kwargs: dict[str, Any],
    agent_factory: AgentFactory | None,
    modes: set[EvalMode],
) -> EvalModels:
    """Build the models and load them (the LLM's prompt prefix primed for the agent)."""
    from ..plugins.prewarm import prewarm_models, prompt_prefix

    models = await asyncio.to_thread(build_models, resolved)
    if "audio" not in modes:
        models = SessionModels(stt=None, vad=None, llm=models.llm, tts=None)
    agent = await make_agent(agent_factory)
    errors = await prewarm_models(
        models,
        instructions=agent.instructions,
        tools=list(agent.tools),
        history=prompt_prefix(agent),
    )
    if errors:
        raise RuntimeError("; ".join(errors))
    return EvalModels(resolved, models, {**resolved.session_defaults(), **session_kwargs})


def _tool_uses(items: list[Any]) -> list[ToolUse]:
    outputs = {i.call_id: i for i in items if isinstance(i, FunctionCallOutput)}
    uses = []
    for item in items:
        if isinstance(item, FunctionCall):
            try:
                args = json.loads(item.arguments or "{}")
            except json.JSONDecodeError:
                args = {"(unparsed)": item.arguments}
            out = outputs.get(item.call_id)
            uses.append(
                ToolUse(
                    item.name,
                    args if isinstance(args, dict) else {"(value)": args},
                    out.output if out is not None else "",
                    out.is_error if out is not None else False,
                )
            )
    return uses


def _replies(items: list[Any]) -> tuple[str, bool]:
    texts = [
        (i.text_content or "", i.interrupted)
        for i in items
        if isinstance(i, ChatMessage) and i.role == "assistant"
    ]
    return " ".join(t for t, _ in texts if t).strip(), any(x for _, x in texts)


class _TimedOutput(FakeAudioOutput):
    """A real-time fake speaker that notes when each reply's first audio arrives."""

    def __init__(self) -> None:
        super().__init__()
        self.first_audio_at = 0.0
        self.first_audio = asyncio.Event()

    async def capture_frame(self, frame: rtc.AudioFrame) -> None:
        if not self.first_audio.is_set():
            self.first_audio_at = asyncio.get_running_loop().time()
            self.first_audio.set()
        await super().capture_frame(frame)


class _Watcher:
    """Session events an audio turn waits for."""

    def __init__(self, session: AgentSession[Any]) -> None:
        self.replied = asyncio.Event()
        self.user_turns = 0
        session.on("conversation_item_added", self._on_item)

    def _on_item(self, ev: ConversationItemAddedEvent) -> None:
        item = ev.item
        if isinstance(item, ChatMessage) and item.role == "assistant":
            self.replied.set()
        elif isinstance(item, ChatMessage) and item.role == "user":
            self.user_turns += 1


async def _settled(session: AgentSession[Any], quiet: float = 0.4) -> None:
    """Until the agent is listening and says nothing for ``quiet`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + REPLY_TIMEOUT
    calm_since: float | None = None
    while loop.time() < deadline:
        speech = session.current_speech
        calm = session.agent_state in ("listening", "idle") and (speech is None or speech.done())
        if calm:
            calm_since = calm_since or loop.time()
            if loop.time() - calm_since >= quiet:
                return
        else:
            calm_since = None
        await asyncio.sleep(0.05)


async def _text_turn(session: AgentSession[Any], text: str) -> TurnOutcome:
    loop = asyncio.get_running_loop()
    started = loop.time()
    first_reply: list[float] = []

    def on_item(ev: ConversationItemAddedEvent) -> None:
        if isinstance(ev.item, ChatMessage) and ev.item.role == "assistant" and not first_reply:
            first_reply.append(loop.time())

    session.on("conversation_item_added", on_item)
    try:
        result = await asyncio.wait_for(session.run(user_input=text), REPLY_TIMEOUT)
    except TimeoutError:
        return TurnOutcome(text, error=f"no reply within {REPLY_TIMEOUT:g} s")
    finally:
        session.off("conversation_item_added", on_item)
    items = [ev.item for ev in result.events]
    reply, interrupted = _replies(items)
    e2e = (first_reply[0] - started) * 1000 if first_reply else None
    return TurnOutcome(text, None, _tool_uses(items), reply, e2e, interrupted)


async def _audio_turn(
    session: AgentSession[Any],
    mic: ScriptedMicrophone,
    out: _TimedOutput,
    watcher: _Watcher,
    turn: Turn,
    voice: UserVoice = "auto",
) -> TurnOutcome:
    label = turn.say or turn.label()
    try:
        audio = await asyncio.to_thread(turn_audio, turn, voice)
    except TurnAudioError as e:
        return TurnOutcome(label, error=str(e))
    first = len(session.history.items)
    watcher.replied.clear()
    out.first_audio.clear()
    if audio.pcm is None:  # a typed turn of a recording
        return await _text_turn(session, audio.text or "")
    mic.say(audio.pcm)
    await mic.voice_ended.wait()
    voice_end = mic.voice_ended_at
    e2e: float | None = None
    try:
        await asyncio.wait_for(out.first_audio.wait(), REPLY_TIMEOUT)
        e2e = (out.first_audio_at - voice_end) * 1000
        if turn.expect.interrupt_after is not None:
            await asyncio.sleep(turn.expect.interrupt_after)
            mic.say(await asyncio.to_thread(speak, INTERRUPTION, voice))
        await asyncio.wait_for(watcher.replied.wait(), REPLY_TIMEOUT)
    except TimeoutError:
        pass
    await _settled(session)
    items = session.history.items[first:]
    heard = " ".join(
        i.text_content or "" for i in items if isinstance(i, ChatMessage) and i.role == "user"
    )
    if turn.expect.interrupt_after is not None:  # the reply to the interruption is not judged
        cut = next(
            (
                k
                for k, i in enumerate(items)
                if isinstance(i, ChatMessage) and i.role == "assistant" and i.interrupted
            ),
            None,
        )
        items = items[: cut + 1] if cut is not None else items
    reply, interrupted = _replies(items)
    error = None if heard.strip() else "the agent heard nothing"
    return TurnOutcome(label, heard, _tool_uses(items), reply, e2e, interrupted, error)


async def run_scenario(
    loaded: LoadedScenario,
    mode: EvalMode,
    models: EvalModels,
    agent_factory: AgentFactory | None,
    *,
    run: int = 1,
    on_turn: Callable[[TurnResult], None] | None = None,
) -> list[TurnResult]:
    """Every turn of ``loaded``'s scenario in one new session; notes and other state of the
    default agent start empty (``$VOICETUI_NOTES_PATH`` points into a fresh folder)."""
    scenario = loaded.scenario
    results: list[TurnResult] = []
    with tempfile.TemporaryDirectory(prefix="voicetui-eval-") as tmp:
        previous = os.environ.get(NOTES_PATH_ENV)
        os.environ[NOTES_PATH_ENV] = str(Path(tmp) / "notes.json")
        try:
            agent = await make_agent(agent_factory)
        finally:
            if previous is None:
                os.environ.pop(NOTES_PATH_ENV, None)
            else:
                os.environ[NOTES_PATH_ENV] = previous
        m = models.models
        kwargs = {**models.session_kwargs, "user_away_timeout": None}
        if mode == "text":
            session: AgentSession[Any] = AgentSession(llm=m.llm, **kwargs)
        else:
            session = AgentSession(stt=m.stt, vad=m.vad, llm=m.llm, tts=m.tts, **kwargs)
        mic = ScriptedMicrophone()
        out = _TimedOutput()
        watcher = _Watcher(session)
        if mode == "audio":
            session.input.audio = mic
            session.output.audio = out
        await session.start(agent)
        broken: str | None = None
        try:
            if mode == "audio":
                await _settled(session)  # a greeting from on_enter plays out first
            for index, turn in enumerate(scenario.turns, start=1):
                if broken is not None:
                    outcome = TurnOutcome(turn.label(), error=broken)
                elif mode == "text":
                    text = turn.say if turn.say is not None else None
                    if text is None:
                        outcome = TurnOutcome(turn.label(), error="audio turns need --mode audio")
                    else:
                        outcome = await _text_turn(session, text)
                else:
                    outcome = await _audio_turn(session, mic, out, watcher, turn, models.voice)
                if outcome.error is not None and outcome.error.startswith("no reply within"):
                    broken = f"not run: turn {index} got no reply"  # the session is stuck
                checks = check_turn(outcome, turn.expect, loaded.suite.defaults)
                verdict = None
                if turn.expect.judge is not None and models.judge is not None:
                    verdict = await judge_reply(
                        models.judge,
                        user=outcome.heard or outcome.user_text,
                        reply=outcome.reply,
                        intent=turn.expect.judge,
                    )
                result = TurnResult(
                    scenario.name,
                    loaded.file,
                    index,
                    turn.label(),
                    mode,
                    run,
                    outcome,
                    checks,
                    verdict,
                )
                results.append(result)
                if on_turn is not None:
                    on_turn(result)
        finally:
            try:
                await asyncio.wait_for(session.aclose(), CLOSE_TIMEOUT)
            except TimeoutError:
                logger.warning("the session of %r did not close in time", scenario.name)
            await out.aclose()
    return results
