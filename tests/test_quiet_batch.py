"""Quiet microphone blocks batched in the capture callback (``io/local/quiet_batch.py``): only
after 2 s of quiet, never more than 4, and anything louder (or an overflow, or audio playing)
sends what waits and itself at once, in order."""

from __future__ import annotations

import numpy as np

from voicetui.io.local.quiet_batch import BATCH, QUIET_HOLD, QuietBatcher

BLOCK = 0.03
HOLD_BLOCKS = round(QUIET_HOLD / BLOCK)


def block(peak: int) -> np.ndarray:
    a = np.zeros(480, np.int16)
    a[7] = peak
    return a


def feed(b: QuietBatcher[int], peaks: list[int], start: int = 0, **kw: bool) -> list[list[int]]:
    """The hand-overs, as lists of block numbers."""
    out = []
    for i, p in enumerate(peaks, start):
        got = b.add(i, block(p), may_wait=kw.get("may_wait", True))
        if got:
            out.append(got)
    return out


def test_quiet_blocks_go_one_by_one_until_the_input_was_quiet_for_the_hold() -> None:
    b: QuietBatcher[int] = QuietBatcher(BLOCK)
    handed = feed(b, [0] * (HOLD_BLOCKS - 1))
    assert handed == [[i] for i in range(HOLD_BLOCKS - 1)]


def test_then_they_wait_and_go_in_batches_in_order() -> None:
    b: QuietBatcher[int] = QuietBatcher(BLOCK)
    n = HOLD_BLOCKS + 3 * BATCH
    handed = feed(b, [0] * n)
    batched = [h for h in handed if len(h) > 1]
    assert batched and all(len(h) == BATCH for h in batched)
    handed.append(b.flush())  # (the stream stops: the last ones go)
    assert [i for h in handed for i in h] == list(range(n))  # none lost, none repeated


def test_a_louder_block_sends_what_waits_and_itself_at_once() -> None:
    b: QuietBatcher[int] = QuietBatcher(BLOCK)
    feed(b, [0] * (HOLD_BLOCKS + BATCH))  # ends with blocks waiting
    waiting = b.flush()
    feed(b, [0, 0], start=100)
    assert b.add(102, block(3000), may_wait=True) == [100, 101, 102]
    assert waiting  # (there were blocks waiting before)
    # and the hold starts again: the next quiet blocks go one by one
    assert feed(b, [0] * 5, start=103) == [[i] for i in range(103, 108)]


def test_an_overflow_or_audio_playing_sends_at_once() -> None:
    b: QuietBatcher[int] = QuietBatcher(BLOCK)
    feed(b, [0] * (HOLD_BLOCKS + 1))
    b.flush()
    assert b.add(1, block(0), may_wait=True) == []
    assert b.add(2, block(0), may_wait=False) == [1, 2]


def test_quiet_is_relative_to_the_room_noise_and_capped() -> None:
    # a steady -50 dBFS noise floor (peak 100) is quiet: batched after the hold
    b: QuietBatcher[int] = QuietBatcher(BLOCK)
    handed = feed(b, [100] * (HOLD_BLOCKS + 2 * BATCH))
    assert any(len(h) > 1 for h in handed)
    b.flush()
    # a block 10 dB above that floor is not
    assert b.add(0, block(316), may_wait=True) == [0]
    # a loud steady noise (-30 dBFS) is never quiet, however steady
    loud: QuietBatcher[int] = QuietBatcher(BLOCK)
    assert all(len(h) == 1 for h in feed(loud, [1000] * (HOLD_BLOCKS + 2 * BATCH)))


def test_full_scale_negative_peak_is_loud() -> None:
    b: QuietBatcher[int] = QuietBatcher(BLOCK)
    feed(b, [0] * (HOLD_BLOCKS + 1))
    b.flush()
    assert b.add(0, block(-32768), may_wait=True) == [0]
