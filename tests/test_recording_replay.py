"""Replay: a recording's user audio fed to a new session with scripted models reproduces the
conversation and its tool calls; the diff shows it side by side with latency."""

from __future__ import annotations

import asyncio
import io
import json
from pathlib import Path

import numpy as np
import pytest

from voicetui.agents import AgentSession
from voicetui.agents.testing import (
    FakeAudioInput,
    FakeAudioOutput,
    FakeLLM,
    FakeLLMResponse,
    FakeSTT,
    FakeToolCall,
    FakeTTS,
    FakeVAD,
    Utterance,
)
from voicetui.recording import (
    Recorder,
    ReplayAudioInput,
    compare,
    diff,
    format_recording,
    load_recording,
    replay,
    replay_and_diff,
)
from voicetui.recording.replay import send_typed

from ._recording_child import SCRIPT, OrderedSTT, scripted_llm
from .test_recording import RATE, WeatherAgent, active_regions

pytestmark = [pytest.mark.looptime, pytest.mark.usefixtures("no_leaks")]


def new_session(stt: FakeSTT) -> AgentSession[None]:
    return AgentSession(
        vad=FakeVAD(),
        stt=stt,
        llm=scripted_llm(),
        tts=FakeTTS(ttfb=0.1, frame_duration=0.02),
        user_away_timeout=None,
    )


async def record_original(root: Path) -> Path:
    session = new_session(FakeSTT(final_delay=0.2))
    mic = FakeAudioInput(
        [
            Utterance(1.0, silence_before=0.5, transcript=SCRIPT[0]),
            Utterance(0.8, silence_before=3.0, transcript=SCRIPT[1]),
            Utterance(0.5, silence_before=3.0, transcript=SCRIPT[2]),
        ]
    )
    out = FakeAudioOutput()
    session.input.audio = mic
    session.output.audio = out
    rec = Recorder(root / "original", session=session, sample_rate=RATE)
    d = await rec.start()
    rec.attach()
    await session.start(WeatherAgent())
    await asyncio.sleep(13)
    await rec.stop()
    await session.aclose()
    await out.aclose()
    return d


async def factory() -> tuple[AgentSession[None], WeatherAgent]:
    return new_session(OrderedSTT(SCRIPT, final_delay=0.2)), WeatherAgent()


@pytest.mark.parametrize("realtime", [False, True])
async def test_replay_reproduces_the_tool_calls_and_diff_shows_them(
    tmp_path: Path, realtime: bool
) -> None:
    original = load_recording(await record_original(tmp_path))
    assert [t.user for t in original.turns] == SCRIPT
    assert [json.loads(c.arguments)["city"] for c in original.tool_calls] == ["Paris", "Rome"]

    loop = asyncio.get_running_loop()
    t0 = loop.time()
    new_dir = await replay(
        original, session_factory=factory, realtime=realtime, out_root=tmp_path / "replays"
    )
    took = loop.time() - t0
    new = load_recording(new_dir)
    assert new.session["metadata"] == {"replay_of": original.directory.name, "realtime": realtime}
    assert new.warnings == []

    cmp = compare(original, new)
    assert cmp.user_equal and cmp.tool_calls_equal and cmp.agent_equal
    assert [c.key() for c in new.tool_calls] == [c.key() for c in original.tool_calls]
    # the replayed user audio is the recorded one
    assert len(active_regions(new.user_audio, RATE)) == 3
    if realtime:  # same pace: the user spoke at the same moments, latency is comparable
        for a, b in zip(original.turns, new.turns, strict=True):
            assert b.t == pytest.approx(a.t, abs=0.03)
            assert b.latency.e2e == pytest.approx(a.latency.e2e, abs=0.03)
    else:  # fast: the user's silences are skipped
        assert took < original.duration

    text = diff(original, new, width=140)
    assert "user transcripts: equal (3 turns)" in text
    assert "tool calls:       equal (3 turns) (A 2 calls, B 2 calls)" in text
    assert 'get_weather({"city": "Paris"}) → sunny in Paris' in text
    assert text.count(" = ") >= 3 + 2 + 3  # users, tools, replies
    assert "latency" in text and "e2e" in text and "mean latency:" in text
    assert "LLM TTFT 0.20 (+0.00)" in text


async def test_diff_marks_what_changed(tmp_path: Path) -> None:
    original = load_recording(await record_original(tmp_path))

    async def other_factory() -> tuple[AgentSession[None], WeatherAgent]:
        llm = FakeLLM(
            [
                FakeLLMResponse(
                    input="weather in paris",
                    tool_calls=[FakeToolCall("get_weather", {"city": "Lyon"})],
                ),
            ],
            default="Something else.",
        )
        session: AgentSession[None] = AgentSession(
            vad=FakeVAD(),
            stt=OrderedSTT(SCRIPT, final_delay=0.2),
            llm=llm,
            tts=FakeTTS(ttfb=0.1, frame_duration=0.02),
            user_away_timeout=None,
        )
        return session, WeatherAgent()

    out = io.StringIO()
    code = await replay_and_diff(original.directory, session_factory=other_factory, out=out)
    assert code == 1  # the tool calls differ
    (new_dir,) = [p for p in original.directory.parent.iterdir() if p != original.directory]
    new = load_recording(new_dir)
    cmp = compare(original, new)
    assert cmp.user_equal and not cmp.tool_calls_equal and not cmp.agent_equal
    text = out.getvalue()
    assert "≠" in text and "Lyon" in text and "<" in text  # Rome's call only on the left
    assert "tool calls:       2 of 3 turns differ" in text
    assert "recording" in format_recording(new) and "tool get_weather" in format_recording(new)


async def test_replay_input_paces_in_real_time_and_feeds_pieces_at_once() -> None:
    pcm = (np.arange(RATE) % 100).astype(np.int16)  # 1 s
    inp = ReplayAudioInput(pcm, RATE, realtime=True)
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    frames = 0
    async for f in inp:
        if inp.fed.is_set():  # set once the last frame was taken
            assert not np.frombuffer(f.data, dtype=np.int16).any()  # then silence
            break
        frames += 1
    assert frames == 100 and loop.time() - t0 == pytest.approx(1.01, abs=0.02)

    gates: list[tuple[int, float]] = []

    async def gate(k: int) -> None:
        gates.append((k, loop.time()))
        await asyncio.sleep(0.5)

    inp = ReplayAudioInput(pcm, RATE, realtime=False, cuts=[0.3], gate=gate)
    t0 = loop.time()
    voiced = 0
    async for f in inp:
        voiced += int(np.frombuffer(f.data, dtype=np.int16).any())
        if inp.fed.is_set():
            break
    assert voiced == 100
    assert [k for k, _ in gates] == [0, 1]
    assert loop.time() - t0 == pytest.approx(1.0, abs=0.05)  # two gates, no audio pacing


# --- typed turns and barge-in -------------------------------------------------------------------
MIXED = ["weather in paris", "and in rome", "thanks"]
"""Spoken, typed, spoken."""


async def record_mixed(root: Path) -> Path:
    """The user speaks, types a message (no audio), then speaks again."""
    session = new_session(FakeSTT(final_delay=0.2))
    mic = FakeAudioInput(
        [
            Utterance(1.0, silence_before=0.5, transcript=MIXED[0]),
            Utterance(0.5, silence_before=9.0, transcript=MIXED[2]),
        ]
    )
    out = FakeAudioOutput()
    session.input.audio = mic
    session.output.audio = out
    rec = Recorder(root / "original", session=session, sample_rate=RATE)
    d = await rec.start()
    rec.attach()
    await session.start(WeatherAgent())
    await asyncio.sleep(6.0)
    await send_typed(session, MIXED[1])  # as the app sends what the user typed
    await asyncio.sleep(8.0)
    await rec.stop()
    await session.aclose()
    await out.aclose()
    return d


@pytest.mark.parametrize("realtime", [False, True])
async def test_replay_types_the_typed_turns_between_the_spoken_ones(
    tmp_path: Path, realtime: bool
) -> None:
    original = load_recording(await record_mixed(tmp_path))
    assert [(t.user, t.typed) for t in original.turns] == [
        (MIXED[0], False),
        (MIXED[1], True),
        (MIXED[2], False),
    ]

    async def spoken_only() -> tuple[AgentSession[None], WeatherAgent]:
        # the STT hears only the spoken turns: the typed one has no audio
        return new_session(OrderedSTT([MIXED[0], MIXED[2]], final_delay=0.2)), WeatherAgent()

    new_dir = await replay(
        original, session_factory=spoken_only, realtime=realtime, out_root=tmp_path / "replays"
    )
    new = load_recording(new_dir)
    assert [(t.user, t.typed) for t in new.turns] == [(t.user, t.typed) for t in original.turns]
    cmp = compare(original, new)
    assert cmp.user_equal and cmp.tool_calls_equal and cmp.agent_equal
    assert [json.loads(c.arguments)["city"] for c in new.tool_calls] == ["Paris", "Rome"]
    if realtime:  # each turn at its recorded moment, the typed one included
        for a, b in zip(original.turns, new.turns, strict=True):
            assert b.t == pytest.approx(a.t, abs=0.05)
    else:  # in order, sooner
        assert new.turns[-1].t < original.turns[-1].t
    text = diff(original, new, width=140)
    assert "and in rome [typed]" in text and "user transcripts: equal (3 turns)" in text


STORY = "Once upon a time " + "there was a very long story that went on and on " * 4
BARGE_IN = ["tell me a story", "stop"]


def story_session(stt: FakeSTT) -> AgentSession[None]:
    llm = FakeLLM(
        [
            FakeLLMResponse(input=BARGE_IN[0], content=STORY, ttft=0.2),
            FakeLLMResponse(input=BARGE_IN[1], content="Okay, stopping.", ttft=0.2),
        ]
    )
    return AgentSession(
        vad=FakeVAD(),
        stt=stt,
        llm=llm,
        tts=FakeTTS(ttfb=0.1, seconds_per_char=0.05, frame_duration=0.02),
        user_away_timeout=None,
        false_interruption_timeout=None,
    )


async def record_barge_in(root: Path) -> Path:
    """The agent tells a long story (~11 s of speech); the user talks over it at ~4 s."""
    session = story_session(FakeSTT(final_delay=0.2))
    mic = FakeAudioInput(
        [
            Utterance(1.0, silence_before=0.5, transcript=BARGE_IN[0]),
            Utterance(0.8, silence_before=2.5, transcript=BARGE_IN[1]),
        ]
    )
    out = FakeAudioOutput()
    session.input.audio = mic
    session.output.audio = out
    rec = Recorder(root / "original", session=session, sample_rate=RATE)
    d = await rec.start()
    rec.attach()
    await session.start(WeatherAgent())
    await asyncio.sleep(10.0)
    await rec.stop()
    await session.aclose()
    await out.aclose()
    return d


@pytest.mark.parametrize("realtime", [True, False])
async def test_realtime_replay_reproduces_a_user_talking_over_the_agent(
    tmp_path: Path, realtime: bool
) -> None:
    original = load_recording(await record_barge_in(tmp_path))
    story, answer = original.turns
    assert story.user == BARGE_IN[0] and answer.user == BARGE_IN[1]
    cut = story.replies[0]
    assert cut.interrupted and 0 < len(cut.text) < len(STORY.strip())
    assert answer.replies[0].text == "Okay, stopping."

    async def factory() -> tuple[AgentSession[None], WeatherAgent]:
        return story_session(OrderedSTT(BARGE_IN, final_delay=0.2)), WeatherAgent()

    new = load_recording(
        await replay(
            original, session_factory=factory, realtime=realtime, out_root=tmp_path / "replays"
        )
    )
    replayed = new.turns[0].replies[0]
    if realtime:  # the user spoke at the same moment: the story is cut at the same word
        assert replayed.interrupted and replayed.text == cut.text
        assert new.turns[1].t == pytest.approx(answer.t, abs=0.05)
        cmp = compare(original, new)
        assert cmp.user_equal and cmp.agent_equal
        assert diff(original, new).count("[interrupted]") == 2
    else:  # fast pace waits for the agent to finish each reply: no barge-in (documented)
        assert not replayed.interrupted
        assert [t.user for t in new.turns] == BARGE_IN
