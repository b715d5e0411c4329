"""The echo canceller's helpers, deterministically: the far-end frames paired one to one with
the mic's (whatever order a busy loop delivers them in), the underrun silence read from the
speaker's DAC times, and the gate that silences echo the canceller let through."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from livekit import rtc

from voicetui.io.local.echo_gate import EchoGate
from voicetui.io.local.playback import _device_silence
from voicetui.io.local.render_pairing import RenderPairing


def frame(value: int) -> rtc.AudioFrame:
    return rtc.AudioFrame(np.full(480, value, np.int16).tobytes(), 48000, 1, 480)


def value(f: rtc.AudioFrame | None) -> int | None:
    return None if f is None else int(np.frombuffer(f.data, np.int16)[0])


def test_pairing_is_one_to_one_whatever_the_arrival_order() -> None:
    pairing = RenderPairing(lag_frames=2)
    pairing.start()
    taken: list[int | None] = []
    # a burst of ten render frames, then ten mic frames, then interleaved again
    for i in range(10):
        pairing.push(frame(i))
    taken += [value(pairing.take()) for _ in range(10)]
    for i in range(10, 15):
        pairing.push(frame(i))
        taken.append(value(pairing.take()))
    # the k-th mic frame takes the (k - 2)-th render frame, one each
    assert taken == [None, None, *range(13)]
    assert pairing.late_frames == 0 and pairing.resyncs == 0


def test_a_missing_render_frame_is_silence_and_a_late_one_moves_the_pairing() -> None:
    pairing = RenderPairing(lag_frames=1)
    pairing.start()
    pairing.push(frame(0))
    assert [value(pairing.take()) for _ in range(3)] == [None, 0, None]  # render 1 not there
    assert pairing.late_frames == 1
    # render 1 and 2 arrive after their turn (the speaker's callback ran late: the device
    # played silence meanwhile): they are paired from now on, not dropped
    pairing.push(frame(1))
    pairing.push(frame(2))
    assert [value(pairing.take()) for _ in range(2)] == [1, 2]
    assert pairing.resyncs == 1
    # a restart (the agent speaks again after an idle stretch) counts from zero again
    pairing.stop()
    pairing.start()
    pairing.push(frame(7))
    assert [value(pairing.take()) for _ in range(2)] == [None, 7]


def dac(at: float) -> SimpleNamespace:
    return SimpleNamespace(outputBufferDacTime=at)


def test_underrun_silence_comes_from_the_dac_time_at_an_xrun_only() -> None:
    expected = [0.0]
    assert _device_silence(dac(100.0), expected, 0.01, False) == 0.0  # (the first block)
    # jitter without an xrun: not silence (DAC times jitter by ±10 ms on a busy machine)
    assert _device_silence(dac(100.018), expected, 0.01, False) == 0.0
    # an xrun: the block plays 40 ms later than the one before said it would
    assert _device_silence(dac(100.068), expected, 0.01, True) == pytest.approx(0.04)
    # a host API without DAC times: nothing known
    assert _device_silence(dac(0.0), expected, 0.01, True) == 0.0


def ms(db: float) -> float:
    return float(10 ** (db / 10))


def test_gate_silences_leaked_echo_but_not_a_user_talking_over_the_agent() -> None:
    gate = EchoGate()
    t = 0.0

    def step(render_db: float, mic_db: float, out_db: float) -> bool:
        nonlocal t
        t += 0.01
        gate.render(ms(render_db), t)
        return gate.leaked(ms(mic_db), ms(out_db), t)

    # the canceller converged (40 dB off): nothing to do; it learns the echo's loss (-10 dB)
    assert not any(step(-20, -30, -70) for _ in range(100))
    assert gate.echo_return_loss_db == pytest.approx(10.0)
    # then it leaks (5 dB off): silenced, as long as the mic is not louder than the echo
    assert all(step(-20, -30, -35) for _ in range(10))
    # the user talks over the agent, 10 dB louder at the mic than its echo: heard
    assert not any(step(-20, -20, -22) for _ in range(10))
    # ... and the quieter frames of their words too, for the detector's hangover
    assert not step(-20, -29, -31)
    # no agent audio: nothing is gated
    t += 1.0
    assert not step(-120, -30, -31)
    assert gate.suppressed_frames == 10


def test_gate_assumes_the_worst_coupling_until_it_has_heard_the_echo() -> None:
    gate = EchoGate()
    gate.render(ms(-20), 0.0)
    assert gate.echo_return_loss_db == 0.0
    assert gate.leaked(ms(-19), ms(-20), 0.01)  # as loud as the render: maybe its echo
    assert not gate.leaked(ms(-14), ms(-15), 0.02)  # 6 dB louder: a talker


def test_mic_frames_captured_before_the_audio_started_are_not_counted() -> None:
    """A busy loop delivers a backlog of mic frames after the first render block: those were
    captured before it went to the device, and pairing them would show the canceller a
    longer delay than its search covers."""
    pairing = RenderPairing(lag_frames=0)
    pairing.push(frame(0))  # (pushed before start: dropped by it)
    pairing.start(at=10.0)
    pairing.push(frame(1))
    pairing.push(frame(2))
    assert [value(pairing.take(t)) for t in (9.97, 9.98, 9.99)] == [None, None, None]
    assert [value(pairing.take(t)) for t in (10.005, 10.015)] == [1, 2]
    assert pairing.late_frames == 0
