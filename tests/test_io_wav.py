"""WAV file backends: reading, pacing (on virtual time), writing with playback accounting, and a
headless session that answers a spoken WAV question into a WAV file."""

from __future__ import annotations

import asyncio
import wave
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from livekit import rtc

from tests.audio_fixtures import espeak_pcm, have_espeak
from voicetui.agents import Agent, AgentSession
from voicetui.agents.audio import as_array, frame_duration, make_frame
from voicetui.agents.audio import read_audio as read_wav
from voicetui.agents.stt import STT, SpeechData, SpeechEvent, SpeechEventType, STTCapabilities
from voicetui.agents.stt.stream_adapter import StreamAdapter
from voicetui.agents.testing import FakeLLM, FakeTTS, FakeVAD
from voicetui.agents.types import APIConnectOptions
from voicetui.agents.voice.io import PlaybackFinishedEvent
from voicetui.io.wav import WavAudioInput, WavAudioOutput

pytestmark = pytest.mark.looptime


def write_wav(path: Path, pcm: np.ndarray, rate: int, channels: int = 1, width: int = 2) -> Path:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(width)
        w.setframerate(rate)
        w.writeframes(pcm.tobytes())
    return path


def ramp(n: int) -> np.ndarray:
    return (np.arange(n) % 2000 - 1000).astype(np.int16)


def tone(seconds: float, rate: int = 24000) -> np.ndarray:
    t = np.arange(round(seconds * rate)) / rate
    return (np.sin(2 * np.pi * 300 * t) * 8000).astype(np.int16)


async def take(inp: WavAudioInput, n: int | None = None) -> list[rtc.AudioFrame]:
    frames: list[rtc.AudioFrame] = []
    async for f in inp:
        frames.append(f)
        if n is not None and len(frames) >= n:
            break
    return frames


# --- reading -------------------------------------------------------------------------------
def test_read_wav_mixes_down_and_resamples(tmp_path: Path) -> None:
    left, right = np.full(1600, 1000, np.int16), np.full(1600, 3000, np.int16)
    stereo = np.stack([left, right], axis=1).reshape(-1)
    path = write_wav(tmp_path / "s.wav", stereo, 16000, channels=2)
    pcm, rate = read_wav(path)
    assert rate == 16000 and pcm.size == 1600 and set(pcm.tolist()) == {2000}
    pcm, rate = read_wav(path, 48000)
    assert rate == 48000 and pcm.size == 4800
    assert abs(int(pcm[2400]) - 2000) <= 2


def test_read_wav_reads_other_sample_formats_and_rejects_what_is_not_audio(
    tmp_path: Path,
) -> None:
    path = write_wav(tmp_path / "8bit.wav", np.full(100, 0xC0, np.uint8), 8000, width=1)
    pcm, rate = read_wav(path)
    assert rate == 8000 and pcm.size == 100 and set(pcm.tolist()) == {0x40 << 8}
    (tmp_path / "junk.wav").write_bytes(b"not a wav file at all")
    with pytest.raises(ValueError, match=r"junk\.wav: not an audio file"):
        read_wav(tmp_path / "junk.wav")


# --- input ---------------------------------------------------------------------------------
async def test_input_as_fast_as_possible_then_end(tmp_path: Path) -> None:
    pcm = ramp(16000 + 55)  # 1.0034 s: the last frame is shorter
    path = write_wav(tmp_path / "in.wav", pcm, 16000)
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    frames = await take(WavAudioInput(path, realtime=False, then="end"))
    assert loop.time() - t0 < 0.01  # no pacing
    assert [f.samples_per_channel for f in frames[:-1]] == [160] * 100
    assert frames[-1].samples_per_channel == 55
    assert np.array_equal(np.concatenate([as_array(f)[:, 0] for f in frames]), pcm)


async def test_input_realtime_pacing(tmp_path: Path) -> None:
    path = write_wav(tmp_path / "in.wav", ramp(24000 * 2), 24000)
    inp = WavAudioInput(path, realtime=True, then="end", sample_rate=16000)
    assert inp.sample_rate == 16000 and inp.duration == pytest.approx(2.0)
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    stamps: list[float] = []
    async for f in inp:
        stamps.append(loop.time() - t0)
        assert f.sample_rate == 16000
    assert len(stamps) == 200
    # frame k is delivered when k * 10 ms of audio have been "captured"
    assert all(abs(s - k * 0.01) < 0.005 for k, s in enumerate(stamps))


async def test_input_then_silence_is_paced_even_when_the_file_is_not(tmp_path: Path) -> None:
    path = write_wav(tmp_path / "in.wav", ramp(1600), 16000)  # 0.1 s
    inp = WavAudioInput(path, realtime=False, then="silence")
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    frames = await take(inp, 10 + 50)  # the file, then 0.5 s of silence
    assert loop.time() - t0 == pytest.approx(0.5, abs=0.02)
    assert all(not as_array(f).any() for f in frames[10:])
    inp.close()
    assert await take(inp) == []  # a closed input ends


async def test_input_loops(tmp_path: Path) -> None:
    pcm = ramp(800)  # 0.05 s at 16 kHz: 5 frames
    path = write_wav(tmp_path / "in.wav", pcm, 16000)
    inp = WavAudioInput(path, realtime=True, loop=True)
    frames = await take(inp, 12)
    inp.close()
    data = np.concatenate([as_array(f)[:, 0] for f in frames])
    assert np.array_equal(data[:800], pcm) and np.array_equal(data[800:1600], pcm)


def test_input_rejects_bad_then(tmp_path: Path) -> None:
    path = write_wav(tmp_path / "in.wav", ramp(160), 16000)
    with pytest.raises(ValueError, match="then must be"):
        WavAudioInput(path, then="loop")  # type: ignore[arg-type]


# --- output --------------------------------------------------------------------------------
def frames_of(pcm: np.ndarray, rate: int = 24000, ms: int = 20) -> list[rtc.AudioFrame]:
    n = rate * ms // 1000
    return [make_frame(pcm[i : i + n], rate) for i in range(0, pcm.size, n)]


async def test_output_instant_mode_accounts_full_segments(tmp_path: Path) -> None:
    out = WavAudioOutput(tmp_path / "out.wav")
    finished: list[PlaybackFinishedEvent] = []
    started: list[float] = []
    out.on("playback_finished", finished.append)
    out.on("playback_started", lambda ev: started.append(ev.created_at))
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    a, b = tone(1.0), tone(0.5)
    for f in frames_of(a):
        await out.capture_frame(f)
    out.flush()
    ev = await out.wait_for_playout()
    assert loop.time() == t0  # instant
    assert ev.playback_position == pytest.approx(1.0) and not ev.interrupted
    for f in frames_of(b)[:10]:
        await out.capture_frame(f)
    out.clear_buffer()  # what was captured counts as played
    await out.aclose()
    assert len(started) == 2
    assert [(e.playback_position, e.interrupted) for e in finished] == [
        (pytest.approx(1.0), False),
        (pytest.approx(0.2), True),
    ]
    pcm, rate = read_wav(tmp_path / "out.wav")
    assert rate == 24000 and np.array_equal(pcm, np.concatenate([a, b[:4800]]))
    assert out.written_duration == pytest.approx(1.2)


async def test_output_converts_other_rates(tmp_path: Path) -> None:
    out = WavAudioOutput(tmp_path / "out.wav", sample_rate=16000)
    for f in frames_of(tone(1.0, 48000), 48000):
        await out.capture_frame(f)
    out.flush()
    ev = await out.wait_for_playout()
    await out.aclose()
    pcm, rate = read_wav(tmp_path / "out.wav")
    assert rate == 16000 and abs(pcm.size - 16000) < 200
    assert ev.playback_position == pytest.approx(pcm.size / 16000, abs=1e-6)


async def test_output_realtime_paced_clear_and_pause(tmp_path: Path) -> None:
    out = WavAudioOutput(tmp_path / "out.wav", realtime=True)
    assert out.can_pause
    loop = asyncio.get_running_loop()
    finished: list[PlaybackFinishedEvent] = []
    out.on("playback_finished", finished.append)

    async def feed(pcm: np.ndarray) -> None:
        for f in frames_of(pcm):
            await out.capture_frame(f)
        out.flush()

    t0 = loop.time()
    await feed(tone(1.0))
    ev = await out.wait_for_playout()
    assert loop.time() - t0 == pytest.approx(1.0, abs=0.03)
    assert ev.playback_position == pytest.approx(1.0) and not ev.interrupted
    # clear mid-way: what was played is reported
    task = asyncio.create_task(feed(tone(2.0)))
    await asyncio.sleep(0.5)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    out.clear_buffer()
    ev = await out.wait_for_playout()
    assert ev.interrupted and ev.playback_position == pytest.approx(0.5, abs=0.021)
    # pause / resume
    t0 = loop.time()
    task = asyncio.create_task(feed(tone(1.0)))
    await asyncio.sleep(0.3)
    out.pause()
    await asyncio.sleep(1.0)
    out.resume()
    ev = await out.wait_for_playout()
    await task
    assert loop.time() - t0 == pytest.approx(2.0, abs=0.05)
    assert ev.playback_position == pytest.approx(1.0) and not ev.interrupted
    await out.aclose()
    assert read_wav(tmp_path / "out.wav")[0].size / 24000 == pytest.approx(
        1.0 + ev.playback_position + finished[1].playback_position, abs=0.001
    )


async def test_round_trip_input_to_output(tmp_path: Path) -> None:
    pcm = tone(1.5, 16000)
    src = write_wav(tmp_path / "in.wav", pcm, 16000)
    out = WavAudioOutput(tmp_path / "out.wav", sample_rate=16000)
    async for f in WavAudioInput(src, realtime=False, then="end"):
        await out.capture_frame(f)
    out.flush()
    ev = await out.wait_for_playout()
    await out.aclose()
    assert ev.playback_position == pytest.approx(1.5)
    assert np.array_equal(read_wav(tmp_path / "out.wav")[0], pcm)


# --- a headless session --------------------------------------------------------------------
class FixedSTT(STT):
    """Hears ``transcript`` in any utterance (real audio, no model)."""

    def __init__(self, transcript: str) -> None:
        super().__init__(capabilities=STTCapabilities(streaming=False, interim_results=False))
        self.transcript = transcript
        self.heard: list[float] = []

    async def _recognize_impl(
        self, buffer: list[rtc.AudioFrame], *, language: str | None, conn_options: APIConnectOptions
    ) -> SpeechEvent:
        self.heard.append(sum(frame_duration(f) for f in buffer))
        return SpeechEvent(
            SpeechEventType.FINAL_TRANSCRIPT, [SpeechData(text=self.transcript, confidence=1.0)]
        )


@pytest.mark.skipif(not have_espeak(), reason="espeak-ng is not installed")
async def test_headless_session_answers_a_wav_question_into_a_wav(tmp_path: Path) -> None:
    question = espeak_pcm("What time is it?", sample_rate=16000, silence_before=0.3)
    src = write_wav(tmp_path / "question.wav", question, 16000)
    vad = FakeVAD()
    stt = FixedSTT("what time is it")
    tts = FakeTTS(seconds_per_char=0.05)
    session: AgentSession[Any] = AgentSession(
        vad=vad, stt=StreamAdapter(stt=stt, vad=vad), llm=FakeLLM(default="It is noon."), tts=tts
    )
    out = WavAudioOutput(tmp_path / "answer.wav", realtime=True)
    session.input.audio = WavAudioInput(src, realtime=False, then="silence")
    session.output.audio = out
    replied = asyncio.Event()
    session.on(
        "agent_state_changed",
        lambda ev: replied.set() if ev.old_state == "speaking" else None,
    )
    await session.start(Agent(instructions="Tell the time."))
    async with asyncio.timeout(20):
        await replied.wait()
    await session.aclose()
    await out.aclose()
    assert stt.heard and 0.5 < stt.heard[0] < 2.5
    assert [m.text_content for m in session.history.messages()] == [
        "what time is it",
        "It is noon.",
    ]
    answer, rate = read_wav(tmp_path / "answer.wav")
    assert answer.size / rate == pytest.approx(len("It is noon.") * 0.05, abs=0.03)
    assert np.abs(answer.astype(np.int32)).max() > 4000
