"""The listening pipeline's audio clock: VAD events are dated by the audio they are about, and
the clock keeps no object the garbage collector tracks per frame (at 50 frames a second per
session those set off most young collections and filled the old generation: issue 21, item 4)."""

from __future__ import annotations

import gc

import pytest
from livekit import rtc

from voicetui.agents.audio import mark_captured
from voicetui.agents.voice.recognition_audio import AudioClock


def _frame(at: float, ms: int = 20, rate: int = 16000) -> rtc.AudioFrame:
    n = rate * ms // 1000
    return mark_captured(rtc.AudioFrame(bytes(2 * n), rate, 1, n), at)


def test_positions_map_to_when_their_samples_arrived() -> None:
    clock = AudioClock()
    for i in range(50):  # 1 s of 20 ms frames, captured 100.02 … 101.00
        clock.fed(_frame(100.0 + 0.02 * (i + 1)))
    assert clock.input_rate == 16000
    assert clock.time_of(0.02) == pytest.approx(100.02)
    assert clock.time_of(0.5) == pytest.approx(100.5)
    assert clock.time_of(0.51) == pytest.approx(100.51)  # inside a frame: spread back
    assert clock.time_of(1.0) == pytest.approx(101.0)
    assert clock.time_of(1.2) is None  # audio not fed yet


def test_a_new_stream_counts_from_the_frames_still_queued() -> None:
    clock = AudioClock()
    for i in range(10):
        clock.fed(_frame(10.0 + 0.02 * (i + 1)))
    clock.new_stream(queued=0.04)  # the last two frames go into the new stream first
    assert clock.time_of(0.02) == pytest.approx(10.18)
    assert clock.time_of(0.04) == pytest.approx(10.2)


def test_old_marks_are_dropped_and_recent_ones_still_answer() -> None:
    clock = AudioClock()
    frames = 50 * 40  # 40 s: more than the half minute kept
    for i in range(frames):
        clock.fed(_frame(0.02 * (i + 1)))
    assert clock.time_of(39.0) == pytest.approx(39.0)
    assert clock.time_of(12.0) == pytest.approx(12.0)  # 28 s back: kept
    # earlier than what is kept: the oldest kept mark, spread back, not an error
    assert clock.time_of(40.0 - 30.0 - 5.0) is not None


def test_feeding_frames_leaves_no_tracked_object_behind() -> None:
    clock = AudioClock()
    frames = [_frame(0.02 * (i + 1)) for i in range(500)]
    clock.fed(frames[0])
    gc.collect()
    gc.disable()
    try:
        before = len(gc.get_objects())
        for f in frames[1:]:
            clock.fed(f)
        grown = len(gc.get_objects()) - before
    finally:
        gc.enable()
    assert grown < 10, f"{grown} tracked objects kept for 499 frames"
