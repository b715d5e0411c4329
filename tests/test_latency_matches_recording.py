"""What the latency panel shows agrees with the recording (issue 17, item 4): a question spoken
into the virtual microphone, answered through the virtual speaker while recording; in
``audio.wav`` the silence from the end of the user's voice to the agent's first sample equals the
reported end-to-end latency within one audio frame, and the end-of-turn delay fits inside it."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest

from tests.audio_fixtures import espeak_pcm, have_espeak
from tests.test_io_local_session import ANSWER, QUESTION, local_audio, reply_done  # noqa: F401
from tests.test_io_wav import FixedSTT, write_wav
from tests.virtual_audio import VirtualAudio, virtual_audio_fixture  # noqa: F401
from voicetui.agents import Agent, AgentSession
from voicetui.agents.stt.stream_adapter import StreamAdapter
from voicetui.agents.testing import FakeLLM, FakeLLMResponse, FakeTTS, FakeVAD
from voicetui.io.local import LocalAudio
from voicetui.recording import Recorder, load_recording

pytestmark = pytest.mark.skipif(not have_espeak(), reason="espeak-ng is not installed")

REC_RATE = 16000
FRAME = 0.01  # the microphone's frames (LocalAudio delivers 10 ms)
THRESHOLD_DBFS = -40.0  # the VAD's: the recording is measured the way the session heard it


def ends_of_speech(pcm: np.ndarray, rate: int, *, before: float) -> tuple[float, float]:
    """Where the user's voice ends in the recording, as the VAD hears it: the end of the last
    10 ms frame louder than its threshold. The microphone's frames fall anywhere on the
    recording's sample grid, so this is the earliest and the latest such end over every
    alignment of the frames (at most one frame apart)."""
    n = round(rate * FRAME)
    x = pcm[: round(before * rate)].astype(np.float64) / 32768.0
    ends = []
    for offset in range(n):
        frames = x[offset : offset + (len(x) - offset) // n * n].reshape(-1, n)
        dbfs = 10 * np.log10(np.maximum(np.mean(frames**2, axis=1), 1e-20))
        loud = np.flatnonzero(dbfs > THRESHOLD_DBFS)
        assert loud.size > 50, "the question is not in the recording"
        ends.append((offset + (int(loud[-1]) + 1) * n) / rate)
    return min(ends), max(ends)


def first_loud_sample(pcm: np.ndarray, rate: int, *, after: float = 0.0) -> float:
    """The first agent sample clearly above silence (the reply's tone starts at full level)."""
    idx = np.flatnonzero(np.abs(pcm[round(after * rate) :].astype(np.int32)) > 300)
    assert idx.size, "the agent's audio is not in the recording"
    return after + float(idx[0]) / rate


async def test_reported_e2e_matches_the_silence_in_audio_wav(
    virtual_audio: VirtualAudio,
    local_audio: LocalAudio,  # noqa: F811
    tmp_path: Path,
) -> None:
    question = write_wav(tmp_path / "q.wav", espeak_pcm(QUESTION, sample_rate=22050), 22050)
    vad = FakeVAD(threshold_dbfs=THRESHOLD_DBFS)
    session = AgentSession(
        vad=vad,
        stt=StreamAdapter(stt=FixedSTT("what time is it"), vad=vad),
        llm=FakeLLM([FakeLLMResponse(ANSWER, ttft=0.2)]),
        tts=FakeTTS(seconds_per_char=0.02, ttfb=0.1),
        user_away_timeout=None,
    )
    recorder = Recorder(tmp_path / "rec", session=session, sample_rate=REC_RATE)
    directory = await recorder.start()
    session.input.audio, session.output.audio = local_audio.input, local_audio.output
    recorder.attach()
    await session.start(Agent(instructions="Tell the time."))
    await asyncio.sleep(0.3)
    done = reply_done(session)
    await virtual_audio.play_into_mic(question)
    async with asyncio.timeout(20):
        await done.wait()
    await recorder.stop()
    await session.aclose()

    rec = load_recording(directory)
    [turn] = rec.user_turns
    latency = turn.latency
    assert latency.e2e is not None and latency.eou is not None, latency

    agent_starts = first_loud_sample(rec.agent_audio, rec.sample_rate)
    earliest_end, latest_end = ends_of_speech(rec.user_audio, rec.sample_rate, before=agent_starts)
    # the silence in the file is what the panel said, within one audio frame (the frame grid)
    # and a few samples (the resamplers' delays: the microphone at 48 → 16 kHz, the agent's
    # 24 → 16 kHz in the recording)
    slack = 0.005
    assert agent_starts - latest_end - slack <= latency.e2e, (earliest_end, latest_end, latency)
    assert latency.e2e <= agent_starts - earliest_end + slack, (earliest_end, latest_end, latency)
    # the end-of-turn delay (VAD silence + endpointing) is a part of it, and what followed
    # (LLM first token 0.2 s + TTS first audio 0.1 s) fills the rest
    assert latency.eou < latency.e2e
    assert latency.e2e - latency.eou >= 0.3 - FRAME


# --- the microphone's capture clock (no device: its rules, deterministically) -------------
def test_capture_clock_keeps_back_to_back_audio_back_to_back() -> None:
    from voicetui.io.local.capture import _CaptureClock

    clock = _CaptureClock()
    assert clock.block_end(10.0, 0.03, lost=False) == 10.0
    # a burst: three blocks the OS delivered late, at once: their audio stays 30 ms apart
    ends = [clock.block_end(10.2, 0.03, lost=False) for _ in range(3)]
    assert ends == pytest.approx([10.03, 10.06, 10.09])
    # delivered early (a device clock running fast): followed, a little per block
    end = clock.block_end(10.11, 0.03, lost=False)
    assert 10.11 < end < 10.12
    # an overflow (audio lost): a new run at the delivery
    assert clock.block_end(11.0, 0.03, lost=True) == 11.0
    # a long silence of callbacks (the device stalled): a new run too
    assert clock.block_end(12.0, 0.03, lost=False) == 12.0
    assert clock.block_end(12.05, 0.03, lost=False) == pytest.approx(12.03)
