"""The real VADs (webrtcvad, Silero v6 via onnxruntime) on espeak-ng speech: one START and one END
per utterance, at the right audio times; nothing on silence or low noise; any input rate and
frame size. Plus the shared segmenter's timing rules on synthetic probabilities."""

from __future__ import annotations

import asyncio
import importlib.util
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from livekit import rtc

from tests.audio_fixtures import (
    espeak_frames,
    espeak_pcm,
    have_espeak,
    speech_duration,
    split_frames,
)
from voicetui.agents.audio import as_array, frames_duration
from voicetui.agents.exceptions import VADError
from voicetui.agents.utils.windowed_vad import SegmenterOptions, _Segmenter
from voicetui.agents.vad import VAD, VADEvent, VADEventType

SENTENCE = "Please turn off the lights in the kitchen."
MODEL_RATE = 16000
BEFORE, AFTER = 0.5, 1.0

needs_espeak = pytest.mark.skipif(not have_espeak(), reason="espeak-ng is not installed")


@pytest.fixture(scope="module")
def webrtcvad_factory() -> Callable[..., VAD]:
    pytest.importorskip("webrtcvad", reason="webrtcvad-wheels is not installed")
    from voicetui.plugins import webrtcvad

    return lambda **kw: webrtcvad.VAD(**kw)


@pytest.fixture(scope="module")
def silero_factory() -> Callable[..., VAD]:
    pytest.importorskip("onnxruntime", reason="onnxruntime is not installed")
    pytest.importorskip(
        "faster_whisper", reason="faster-whisper (ships the model) is not installed"
    )
    from voicetui.plugins import silero

    silero.VAD.load()  # the session is loaded once, shared by every VAD built afterwards
    return lambda **kw: silero.VAD.load(**kw)


@pytest.fixture(params=["webrtcvad", "silero"])
def make_vad(request: pytest.FixtureRequest) -> Callable[..., VAD]:
    factory: Callable[..., VAD] = request.getfixturevalue(f"{request.param}_factory")
    return factory


async def run_vad(vad: VAD, frames: list[rtc.AudioFrame]) -> list[VADEvent]:
    """Push every frame without waiting (faster than real time), end the input, collect."""
    stream = vad.stream()
    try:
        for f in frames:
            stream.push_frame(f)
        stream.end_input()
        return [ev async for ev in stream]
    finally:
        await stream.aclose()


def boundaries(events: list[VADEvent]) -> list[VADEvent]:
    return [e for e in events if e.type != VADEventType.INFERENCE_DONE]


def at(ev: VADEvent) -> float:
    """Audio time (s) the event was decided at."""
    return ev.samples_index / MODEL_RATE


@needs_espeak
@pytest.mark.parametrize(
    ("rate", "frame_ms"), [(16000, 20), (48000, 10), (24000, 30), (8000, 20), (44100, 20)]
)
async def test_one_utterance_gives_one_start_and_one_end(
    make_vad: Callable[..., VAD], rate: int, frame_ms: int
) -> None:
    vad = make_vad()
    frames = espeak_frames(SENTENCE, sample_rate=rate, frame_ms=frame_ms)
    onset, end = BEFORE, BEFORE + speech_duration(SENTENCE, rate)
    events = await run_vad(vad, frames)

    b = boundaries(events)
    assert [e.type for e in b] == [VADEventType.START_OF_SPEECH, VADEventType.END_OF_SPEECH]
    start, stop = b
    assert onset <= at(start) <= onset + 0.3
    assert start.speaking and start.speech_duration >= 0.1
    assert end <= at(stop) <= end + 0.4 + 0.2
    # the session dates the end of speech at event time - silence_duration
    assert stop.silence_duration >= 0.4 and not stop.speaking
    assert abs(at(stop) - stop.silence_duration - end) <= 0.2
    # START carries prefix padding + the speech so far; END the whole utterance with padding
    assert start.frames and start.frames[0].sample_rate == rate
    assert 0.3 + 0.1 <= frames_duration(start.frames) <= 0.3 + 0.3
    utterance = frames_duration(stop.frames)
    assert stop.frames[0].sample_rate == rate
    assert (end - onset) + 0.3 <= utterance <= (end - onset) + 0.3 + 0.4 + 0.25

    inferences = [e for e in events if e.type == VADEventType.INFERENCE_DONE]
    window = vad.capabilities.update_interval
    assert abs(len(inferences) * window - frames_duration(frames)) <= 2 * window
    speaking = [e for e in inferences if e.speaking]
    assert speaking and all(at(start) <= at(e) < at(stop) for e in speaking)
    assert all(0.0 <= e.probability <= 1.0 and e.inference_duration >= 0 for e in inferences)
    # every INFERENCE_DONE while speaking carries its window's audio: START's frames and the
    # windows after it are the utterance END returns, to the sample, but for END's own window
    # (what an STT adapter listening to shared events speculates on; issue 21)
    assert all(e.frames and e.frames[0].sample_rate == rate for e in speaking)
    after_start = [e for e in speaking if e.samples_index > start.samples_index]
    rebuilt = np.concatenate([as_array(f)[:, 0] for e in [start, *after_start] for f in e.frames])
    whole = np.concatenate([as_array(f)[:, 0] for f in stop.frames])
    assert np.array_equal(rebuilt, whole[: rebuilt.size])
    assert abs(whole.size - rebuilt.size - window * rate) <= 1


@needs_espeak
async def test_two_utterances_give_two_starts_and_two_ends(make_vad: Callable[..., VAD]) -> None:
    first = espeak_pcm("Hello there, how are you?", silence_before=0.5, silence_after=1.5)
    second = espeak_pcm("I am fine, thank you.", silence_before=0.0, silence_after=1.0)
    events = await run_vad(make_vad(), split_frames(np.concatenate([first, second])))
    assert [e.type for e in boundaries(events)] == [
        VADEventType.START_OF_SPEECH,
        VADEventType.END_OF_SPEECH,
    ] * 2
    second_onset = len(first) / MODEL_RATE
    assert second_onset <= at(boundaries(events)[2]) <= second_onset + 0.3


@pytest.mark.parametrize("amplitude", [0, 30, 100, 300])
async def test_silence_and_low_noise_give_no_start(
    make_vad: Callable[..., VAD], amplitude: int
) -> None:
    """Digital silence and white noise from -70 to -40 dBFS (std 10..300 of int16)."""
    rng = np.random.default_rng(amplitude)
    noise = (rng.standard_normal(MODEL_RATE * 5) * amplitude).astype(np.int16)
    events = await run_vad(make_vad(), split_frames(noise))
    assert boundaries(events) == []
    assert len(events) > 100  # it did run


@needs_espeak
async def test_irregular_frame_sizes_and_stereo(make_vad: Callable[..., VAD]) -> None:
    pcm = espeak_pcm(SENTENCE, sample_rate=48000)
    stereo = np.stack([pcm, pcm], axis=1)
    rng = np.random.default_rng(1)
    frames: list[rtc.AudioFrame] = []
    i = 0
    while i < len(pcm):
        n = int(rng.integers(7, 2000))
        chunk = np.ascontiguousarray(stereo[i : i + n])
        frames.append(rtc.AudioFrame(chunk.tobytes(), 48000, 2, len(chunk)))
        i += n
    b = boundaries(await run_vad(make_vad(), frames))
    assert [e.type for e in b] == [VADEventType.START_OF_SPEECH, VADEventType.END_OF_SPEECH]
    assert b[1].frames[0].num_channels == 1


@needs_espeak
async def test_input_ending_mid_utterance_closes_it(make_vad: Callable[..., VAD]) -> None:
    frames = espeak_frames(SENTENCE, silence_after=0.0)
    b = boundaries(await run_vad(make_vad(), frames))
    assert [e.type for e in b] == [VADEventType.START_OF_SPEECH, VADEventType.END_OF_SPEECH]
    assert frames_duration(b[1].frames) >= speech_duration(SENTENCE) * 0.9


async def test_sample_rate_change_is_a_vad_error(make_vad: Callable[..., VAD]) -> None:
    stream = make_vad().stream()
    stream.push_frame(split_frames(np.zeros(1600, np.int16), sample_rate=16000)[0])
    stream.push_frame(split_frames(np.zeros(4800, np.int16), sample_rate=48000)[0])
    stream.end_input()
    with pytest.raises(VADError, match="sample rate changed"):
        async for _ in stream:
            pass
    await stream.aclose()


async def test_options_are_validated(make_vad: Callable[..., VAD]) -> None:
    with pytest.raises(ValueError):
        make_vad(activation_threshold=0.0)
    with pytest.raises(ValueError):
        make_vad(min_silence_duration=-1)
    with pytest.raises(ValueError):
        make_vad(sample_rate=11025)


@needs_espeak
async def test_per_frame_cost(make_vad: Callable[..., VAD]) -> None:
    """Wall time per 20 ms input frame, all work included (resampling, windows, inference)."""
    vad = make_vad()
    frames = espeak_frames(SENTENCE, sample_rate=48000, silence_before=2.0, silence_after=2.0) * 4
    await run_vad(vad, frames[:50])  # warm up
    started = time.perf_counter()
    events = await run_vad(vad, frames)
    per_frame = (time.perf_counter() - started) / len(frames)
    inferences = [e.inference_duration for e in events if e.type == VADEventType.INFERENCE_DONE]
    per_window = sum(inferences) / len(inferences)

    # one frame at a time, letting the stream catch up after each (as live audio arrives)
    stream = vad.stream()
    started = time.perf_counter()
    for f in frames:
        stream.push_frame(f)
        for _ in range(3):
            await asyncio.sleep(0)
    stream.end_input()
    events = [ev async for ev in stream]
    one_by_one = (time.perf_counter() - started) / len(frames)
    await stream.aclose()
    print(
        f"\n{vad.label}: {per_frame * 1e6:.1f} µs per 20 ms frame (48 kHz in, batched), "
        f"{one_by_one * 1e6:.1f} µs frame by frame; {per_window * 1e6:.1f} µs model time per "
        f"{vad.capabilities.update_interval * 1e3:.0f} ms window; {len(frames)} frames"
    )
    assert len(boundaries(events)) == 8
    assert per_frame < 0.002 and one_by_one < 0.005  # far below real time (20 ms)


# --- the segmenter's rules, on synthetic probabilities ----------------------------------------


def _segment(probs: list[float], **kw: float) -> list[VADEvent]:
    opts = SegmenterOptions(
        activation_threshold=kw.get("activation", 0.5),
        deactivation_threshold=kw.get("deactivation", 0.5),
        min_speech_duration=kw.get("min_speech", 0.1),
        min_silence_duration=kw.get("min_silence", 0.4),
        prefix_padding_duration=kw.get("padding", 0.3),
    )
    seg = _Segmenter(opts, MODEL_RATE, 160)  # 10 ms windows
    chunk = np.ones(160, dtype=np.int16)
    out: list[VADEvent] = []
    for p in probs:
        out += seg.feed(p, chunk, MODEL_RATE, 0.0)
    return out + seg.finish(MODEL_RATE)


def test_segmenter_needs_min_speech_and_min_silence() -> None:
    probs = [0.0] * 50 + [1.0] * 9 + [0.0] * 20 + [1.0] * 100 + [0.0] * 60
    b = boundaries(_segment(probs))
    assert [e.type for e in b] == [VADEventType.START_OF_SPEECH, VADEventType.END_OF_SPEECH]
    start, end = b
    assert start.samples_index == (50 + 9 + 20 + 10) * 160  # 10 windows = 0.1 s of speech
    assert start.speech_duration == pytest.approx(0.1)
    assert frames_duration(start.frames) == pytest.approx(0.3 + 0.1)
    assert end.samples_index == (50 + 9 + 20 + 100 + 40) * 160  # after 0.4 s of silence
    assert end.silence_duration == pytest.approx(0.4)
    assert frames_duration(end.frames) == pytest.approx(0.3 + 1.0 + 0.4)


def test_segmenter_hysteresis_keeps_speech_between_thresholds() -> None:
    probs = [1.0] * 20 + [0.4] * 60 + [0.0] * 50
    b = boundaries(_segment(probs, activation=0.5, deactivation=0.35))
    assert [e.type for e in b] == [VADEventType.START_OF_SPEECH, VADEventType.END_OF_SPEECH]
    assert b[1].samples_index == (20 + 60 + 40) * 160
    # without hysteresis the 0.4s end it
    b = boundaries(_segment(probs, activation=0.5, deactivation=0.5))
    assert b[1].samples_index == (20 + 40) * 160


def test_segmenter_durations_on_inference_events() -> None:
    events = _segment([1.0] * 30 + [0.0] * 50)
    done = [e for e in events if e.type == VADEventType.INFERENCE_DONE]
    assert done[9].speaking and done[9].speech_duration == pytest.approx(0.1)
    assert done[29].speech_duration == pytest.approx(0.3)
    assert not done[-1].speaking and done[-1].silence_duration == pytest.approx(0.5)


def test_segmenter_reports_a_pause_while_still_speaking() -> None:
    # speech, a 0.2 s pause (shorter than min_silence), speech, then the end
    events = _segment([1.0] * 30 + [0.0] * 20 + [1.0] * 30 + [0.0] * 50)
    done = [e for e in events if e.type == VADEventType.INFERENCE_DONE]
    assert done[29].speaking and done[29].silence_duration == 0.0
    # the pause grows window by window while the state is still "speaking"
    assert [round(e.silence_duration, 2) for e in done[30:50]] == [
        round(0.01 * i, 2) for i in range(1, 21)
    ]
    assert all(e.speaking for e in done[30:50])
    assert done[50].speaking and done[50].silence_duration == 0.0  # the voice resumed
    # START and END keep their meaning: no pause on START, the whole silence on END
    start, end = boundaries(events)
    assert start.silence_duration == 0.0 and end.silence_duration == pytest.approx(0.4)


# --- missing optional dependencies ------------------------------------------------------------


def test_missing_webrtcvad_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from voicetui.plugins import webrtcvad

    monkeypatch.setitem(sys.modules, "webrtcvad", None)
    with pytest.raises(VADError, match=r"pip install 'voicetui\[local\]'"):
        webrtcvad.VAD().stream()


def test_missing_silero_runtime_or_model_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from voicetui.plugins import silero

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "faster_whisper" else real(name, *a),
    )
    with pytest.raises(VADError, match="faster-whisper") as info:
        silero.VAD.load()
    assert not info.value.recoverable
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.raises(VADError, match="onnxruntime"):
        silero.VAD.load(model_path=tmp_path / "other.onnx")


async def test_silero_gate_skips_inference_on_digital_silence(
    silero_factory: Callable[..., VAD],
) -> None:
    """Windows below -70 dBFS get probability 0 without running the model (nor touching its
    state); anything louder is inferred exactly as before."""
    from voicetui.plugins.silero import _SileroStream
    from voicetui.plugins.silero._model import WINDOW

    vad = silero_factory()
    stream = vad.stream()
    assert isinstance(stream, _SileroStream)
    try:
        calls: list[int] = []
        infer_sync = stream._infer_sync

        def counting(windows: np.ndarray, state: Any) -> Any:
            calls.append(windows.shape[0])
            return infer_sync(windows, state)

        stream._infer_sync = counting  # type: ignore[method-assign]
        state = stream._state
        probs = await stream._infer(np.zeros((3, WINDOW), dtype=np.float32))
        assert probs.tolist() == [0.0, 0.0, 0.0]
        assert calls == [] and stream._state is state
        quiet = np.full((2, WINDOW), 1e-4, dtype=np.float32)  # -80 dBFS
        assert (await stream._infer(quiet)).tolist() == [0.0, 0.0]
        assert calls == []
        loud = (np.random.default_rng(1).standard_normal((2, WINDOW)) * 0.1).astype(np.float32)
        await stream._infer(loud)
        assert calls == [2]
    finally:
        await stream.aclose()
