"""What-if replay (virtual time, scripted models): a recording where the user paused to think
mid-sentence, replayed with a shorter endpointing delay, reports that turn as cut off, turn by
turn with the latency change; ``--set`` takes any turn option and says what it does not know."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

import pytest

from voicetui.agents import Agent, AgentSession
from voicetui.agents.testing import (
    FakeAudioInput,
    FakeAudioOutput,
    FakeLLM,
    FakeSTT,
    FakeTTS,
    FakeVAD,
    Utterance,
)
from voicetui.cli import whatif_setting
from voicetui.config import ConfigError
from voicetui.recording import Recorder, load_recording, replay_and_diff
from voicetui.recording.whatif import match_turns

from ._recording_child import OrderedSTT

RATE = 16000
PARTS = ["book a table for", "two people please", "thanks"]


def session(stt: FakeSTT, min_delay: float) -> AgentSession[None]:
    return AgentSession(
        vad=FakeVAD(),
        stt=stt,
        llm=FakeLLM(default="Done."),
        tts=FakeTTS(ttfb=0.1, frame_duration=0.02),
        min_endpointing_delay=min_delay,
        user_away_timeout=None,
    )


async def record_hesitant(root: Path) -> Path:
    """'book a table for' … 1.2 s … 'two people please' as one turn (a 2 s endpointing delay),
    then 'thanks'."""
    s = session(FakeSTT(final_delay=0.2), min_delay=2.0)
    mic = FakeAudioInput(
        [
            Utterance(1.0, silence_before=0.5, transcript=PARTS[0]),
            Utterance(0.8, silence_before=1.2, transcript=PARTS[1]),
            Utterance(0.4, silence_before=5.0, transcript=PARTS[2]),
        ]
    )
    out = FakeAudioOutput()
    s.input.audio, s.output.audio = mic, out
    rec = Recorder(root / "original", session=s, sample_rate=RATE)
    d = await rec.start()
    rec.attach()
    await s.start(Agent(instructions="Take bookings."))
    await asyncio.sleep(14)
    await rec.stop()
    await s.aclose()
    await out.aclose()
    return d


@pytest.mark.looptime
async def test_a_shorter_endpointing_delay_cuts_the_thinking_user_off(tmp_path: Path) -> None:
    original = await record_hesitant(tmp_path)
    assert [t.user for t in load_recording(original).user_turns] == [
        "book a table for two people please",
        "thanks",
    ]

    async def factory() -> tuple[AgentSession[None], Agent]:
        return session(OrderedSTT(PARTS, final_delay=0.2), 0.5), Agent(instructions="Book.")

    out = io.StringIO()
    code = await replay_and_diff(
        original,
        session_factory=factory,
        realtime=True,
        out_root=tmp_path / "replays",
        out=out,
        whatif=["min_endpointing_delay=0.5"],
    )
    text = out.getvalue()
    assert code == 1  # the user turns differ
    assert "what if min_endpointing_delay=0.5:" in text
    assert "CUT OFF into 2: book a table for | two people please" in text
    assert "2 turns: 1 cut off, 0 merged into the one before" in text
    # the second turn is the same, answered with a shorter EOU: 2.0 s → 0.5 s
    thanks = next(line for line in text.splitlines() if "'thanks'" in line)
    assert "EOU 2.00 → 0.50 (-1.50)" in thanks


def test_turns_are_matched_by_their_words(tmp_path: Path) -> None:
    from voicetui.conversation import Turn
    from voicetui.recording.load import Recording

    def rec(*said: str) -> Recording:
        import numpy as np

        turns = [Turn(index=0, t=0.0, user=None)]
        turns += [Turn(index=i + 1, t=float(i), user=s) for i, s in enumerate(said)]
        empty = np.zeros((0, 2), np.int16)
        return Recording(tmp_path, {}, [], turns, RATE, empty, empty[:, 0], empty[:, 1])

    # heard a little differently the second time; the first two spoken as one turn now
    matched = match_turns(
        rec("what time is it", "in tokyo please", "set a timer for ten minutes"),
        rec("what time is it in tokio please", "set a timer for", "ten minutes"),
    )
    assert [len(m.now) for m in matched] == [1, 0, 2]
    assert matched[1].merged and matched[2].cut_off


def test_set_takes_turn_options_and_rejects_others() -> None:
    assert whatif_setting("min_endpointing_delay=0.3") == {"turn.min_endpointing_delay": "0.3"}
    assert whatif_setting("turn_detection=smart_turn") == {
        "models.turn_detector": "smart_turn",
        "turn.turn_detection": "vad",
    }
    assert whatif_setting("user-away-timeout=none") == {"turn.user_away_timeout": None}
    with pytest.raises(ConfigError, match="not a turn option"):
        whatif_setting("temperature=2")
    with pytest.raises(ConfigError, match="OPTION=VALUE"):
        whatif_setting("min_endpointing_delay")
