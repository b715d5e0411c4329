"""The one audio utilities module (voicetui.agents.audio): downmix, resampling, re-chunking and
reading files, as every caller uses them."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import soundfile

from voicetui.agents.audio import (
    AudioByteStream,
    FrameResampler,
    Resampler,
    as_array,
    make_frame,
    read_audio,
    read_pcm16,
    remix,
    resample,
    to_float32,
    to_int16,
    to_mono,
)


def test_to_mono_averages_the_channels_into_a_new_array() -> None:
    stereo = np.array([[1000, 3000], [-100, 100]], dtype=np.int16)
    assert to_mono(stereo).tolist() == [2000, 0]
    mono = np.array([[5], [6]], dtype=np.int16)
    out = to_mono(mono)
    out[0] = 0
    assert mono[0, 0] == 5  # a copy: a frame's buffer is never aliased


def test_float_conversions_round_trip_and_clip() -> None:
    pcm = np.array([-32768, 0, 32767], dtype=np.int16)
    assert to_int16(to_float32(pcm)).tolist() == pcm.tolist()
    assert to_int16(np.array([2.0, -2.0], np.float32)).tolist() == [32767, -32768]


def test_remix_down_and_up() -> None:
    stereo = make_frame(np.array([100, 300, -100, -300], np.int16), 16000, 2)
    mono = remix(stereo, 1)
    assert mono.num_channels == 1 and as_array(mono)[:, 0].tolist() == [200, -200]
    back = remix(mono, 2)
    assert as_array(back).tolist() == [[200, 200], [-200, -200]]
    assert remix(mono, 1) is mono


def test_streaming_resampling_matches_the_whole_signal_length() -> None:
    signal = (np.sin(np.arange(48000) * 0.05) * 8000).astype(np.int16)
    resampler = Resampler(48000, 16000)
    parts = [resampler.push(signal[i : i + 480]) for i in range(0, signal.size, 480)]
    parts.append(resampler.flush())
    streamed = np.concatenate(parts)
    assert streamed.dtype == np.int16 and streamed.size == 16000
    whole = resample(signal, 48000, 16000)
    assert whole.dtype == np.int16 and whole.size == 16000
    assert np.max(np.abs(streamed.astype(np.int32) - whole)) < 50


def test_frame_resampler_keeps_the_channels() -> None:
    resampler = FrameResampler(48000, 24000, num_channels=2)
    frames = []
    for _ in range(10):
        frames += resampler.push(make_frame(np.ones(960, np.int16) * 1000, 48000, 2))
    frames += resampler.flush()
    assert {(f.sample_rate, f.num_channels) for f in frames} == {(24000, 2)}
    assert sum(f.samples_per_channel for f in frames) == 2400


def test_byte_stream_cuts_exact_frames_and_flushes_the_rest() -> None:
    chunker = AudioByteStream(16000, 1, samples_per_frame=160)
    frames = chunker.push(bytes(2 * 400))
    assert [f.samples_per_channel for f in frames] == [160, 160]
    assert [f.samples_per_channel for f in chunker.flush()] == [80]


def test_read_audio_reads_any_format_mixed_down(tmp_path: Path) -> None:
    stereo = np.stack([np.full(800, 1000, np.int16), np.full(800, 3000, np.int16)], axis=1)
    path = tmp_path / "s.flac"
    soundfile.write(path, stereo, 8000)
    pcm, rate = read_audio(path)
    assert rate == 8000 and pcm.tolist() == [2000] * 800
    pcm, rate = read_audio(path, 16000)
    assert rate == 16000 and pcm.size == 1600
    (tmp_path / "empty.wav").write_bytes(b"")
    with pytest.raises(ValueError, match=r"empty\.wav: empty or cut short"):
        read_audio(tmp_path / "empty.wav")
    with pytest.raises(FileNotFoundError):
        read_audio(tmp_path / "missing.wav")


def test_read_pcm16_reads_from_the_files_position() -> None:
    samples = np.array([[1, -1], [2, -2], [3, -3]], dtype="<i2")
    f = io.BytesIO(b"HEADER" + samples.tobytes() + b"\x01")  # a torn last sample frame
    f.seek(6)
    assert read_pcm16(f, frames=10, channels=2, sample_rate=8000).tolist() == samples.tolist()
    assert read_pcm16(io.BytesIO(b""), frames=4, channels=1, sample_rate=8000).shape == (0, 1)
