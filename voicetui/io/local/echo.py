"""Echo cancellation for a local mic + speaker pair, with WebRTC's audio processing
(``livekit.rtc.AudioProcessingModule``): what the speaker plays is fed as the reverse (far-end)
stream, every mic frame is processed (echo removed, noise suppressed, high-pass filtered, gain
controlled) before the session hears it.

The stream delay given to the module is the speaker stream's output latency plus the mic
stream's input latency, as PortAudio reports them for the open streams (updated whenever either
is reopened), plus ``extra_delay``. WebRTC's AEC3 refines the delay itself; the hint gets it
converged sooner.

A busy machine: AEC3 pairs the two streams by call count and absorbs little jitter, so each
mic frame is processed right after exactly one far-end frame, whatever order the loop got them
in (:mod:`.render_pairing`); the silence a speaker underrun inserts is put into the far-end
audio too (from PortAudio's DAC times, see ``playback._device_silence``), so the echo's delay
stays put; and what the canceller still lets through while it re-adapts is silenced by a
double-talk gate (:mod:`.echo_gate`), which lets a user talking over the agent through.

Warm-up: for ``warmup`` seconds after the agent starts speaking (each segment's first audible
frame, each resume after a pause, and each glitch — an under/overrun of either stream while
the speaker plays, which shifts the echo's delay), mic frames are replaced by silence (and flagged with
``frame.userdata["echo_warmup"] = True``) — the canceller needs a moment to adapt, and what
leaks through then would sound like the user talking over the agent. How it composes with the
session's turn-taking: the session's VAD sees silence during the warm-up, so nothing said then
can interrupt; after it, an interruption still needs ``min_interruption_duration`` of speech
(and ``min_interruption_words`` if set) as usual. A user who speaks first right at the start of
an agent reply is heard from ``warmup`` seconds on. Set ``warmup=0`` to disable it.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from typing import Any

import numpy as np
from livekit import rtc

from ...agents.audio import AudioByteStream
from ...agents.utils.aio import now
from .echo_gate import EchoGate
from .render_pairing import RenderPairing

logger = logging.getLogger("voicetui.io.local")

_FAR_ACTIVE_LEVEL = 100  # |sample| above this (-50 dBFS): the speaker is playing something
_ERLE_WINDOW_FRAMES = 50  # 10 ms frames per ERLE measurement
_ERLE_MIN_ENERGY = 50 * 160 * 30.0**2  # a window whose mic input is under ~-60 dBFS
_ERLE_FAR_LEVEL = 10 ** (-50 / 10)  # measured on mic frames paired with far-end above -50 dBFS


def _energy(frame: rtc.AudioFrame) -> float:
    samples = np.frombuffer(frame.data, dtype=np.int16).astype(np.float64)
    return float(np.dot(samples, samples))


def _mean_square(frame: rtc.AudioFrame) -> float:
    """Full scale = 1."""
    n = frame.samples_per_channel * frame.num_channels
    return _energy(frame) / (n * 32768.0**2) if n else 0.0


_REVERSE_TAIL = 0.5  # s of played digital silence still fed to the canceller after audio
_RENDER_LAG_FRAMES = 0  # the k-th mic frame captured after the audio started: the k-th frame
_LEVEL = "voicetui_mean_square"  # a far-end frame's userdata: its mean square (full scale = 1)


class EchoCanceller:
    """Shared by :class:`LocalAudioInput` (``process_capture``) and :class:`LocalAudioOutput`
    (``process_reverse``, ``start_warmup``); :class:`LocalAudio` wires both."""

    def __init__(
        self,
        *,
        echo_cancellation: bool = True,
        noise_suppression: bool = True,
        high_pass_filter: bool = True,
        auto_gain_control: bool = True,
        warmup: float = 0.3,
        extra_delay: float = 0.0,
    ) -> None:
        if warmup < 0:
            raise ValueError("warmup must be >= 0")
        self._apm = rtc.AudioProcessingModule(
            echo_cancellation=echo_cancellation,
            noise_suppression=noise_suppression,
            high_pass_filter=high_pass_filter,
            auto_gain_control=auto_gain_control,
        )
        self._aec = echo_cancellation
        self.warmup = warmup
        self._extra_delay = extra_delay
        self._input_latency = 0.0
        self._output_latency = 0.0
        self._warm_until = float("-inf")
        self._far_active_until = float("-inf")
        self._far_nonzero_at = float("-inf")
        self.reverse_skipped = 0
        """Far-end samples not processed because the speaker played idle digital silence."""
        self.capture_skipped = 0
        """Mic samples not processed: digital silence while the speaker was idle."""
        self._reverse: AudioByteStream | None = None  # re-chunks into 10 ms frames
        self._pairing = RenderPairing(_RENDER_LAG_FRAMES)
        self._gate = EchoGate()
        self._failed = False
        # echo return loss enhancement: mic energy in vs out while the speaker plays
        self._erle_in = 0.0
        self._erle_out = 0.0
        self._erle_frames = 0
        self.erle_db: float | None = None
        """The last measured echo return loss enhancement (dB), while the speaker plays and
        for a second after; None when it is idle (nothing to cancel) or AEC is off."""

    @property
    def cancels_echo(self) -> bool:
        return self._aec

    @property
    def suppressed_frames(self) -> int:
        """Mic frames silenced as echo the canceller let through (see :mod:`.echo_gate`)."""
        return self._gate.suppressed_frames

    @property
    def echo_return_loss_db(self) -> float:
        """How much quieter the echo is at the mic than what the speaker played (learned while
        the canceller is converged; 0 until then)."""
        return self._gate.echo_return_loss_db

    @property
    def render_resyncs(self) -> int:
        """Times the speaker's audio came late and its pairing with the mic moved."""
        return self._pairing.resyncs

    @property
    def stream_delay_ms(self) -> int:
        """The delay hint: output latency + input latency (+ extra), in milliseconds."""
        return max(
            0, round((self._input_latency + self._output_latency + self._extra_delay) * 1000)
        )

    def set_input_latency(self, seconds: float) -> None:
        self._input_latency = max(0.0, seconds)

    def set_output_latency(self, seconds: float) -> None:
        self._output_latency = max(0.0, seconds)

    # --- warm-up --------------------------------------------------------------------------
    def start_warmup(self) -> None:
        """The agent starts (or resumes) speaking: treat the mic as echo for ``warmup`` s."""
        if self.warmup > 0:
            self._warm_until = now() + self.warmup

    def on_glitch(self) -> None:
        """A stream dropped or inserted audio (an xrun): the echo's delay just changed under
        the canceller, which re-adapts — treat the mic as echo meanwhile if the speaker was
        playing."""
        if now() < self._far_active_until:
            self.start_warmup()

    @property
    def in_warmup(self) -> bool:
        return now() < self._warm_until

    def plays_at(self, t: float) -> bool:
        """The speaker played audio (not digital silence) within the canceller's tail before
        ``t`` (the loop clock; read from any thread)."""
        return t - self._far_nonzero_at <= _REVERSE_TAIL

    # --- processing -----------------------------------------------------------------------
    def process_reverse(
        self, samples: np.ndarray, sample_rate: int, at: float | None = None
    ) -> None:
        """What the speaker just played (int16 mono, any length), handed to the device from
        ``at`` on (the loop clock; None: unknown). Digital silence played more
        than ``_REVERSE_TAIL`` s after the last non-silent sample is not fed to the module (the
        canceller's tail has long decayed; it saves the work while the agent is silent)."""
        if not samples.size:
            return
        peak = int(np.abs(samples).max())
        t = now()
        if peak > _FAR_ACTIVE_LEVEL:
            self._far_active_until = t + 1.0
        if peak:
            self._far_nonzero_at = t
        elif t - self._far_nonzero_at > _REVERSE_TAIL:
            self.reverse_skipped += samples.size
            self._pairing.stop()
            return
        if not self._aec:  # (only the echo canceller needs the far end)
            return
        if self._reverse is None or self._reverse.sample_rate != sample_rate:
            self._reverse = AudioByteStream(sample_rate, 1)
            self._pairing.stop()
        if not self._pairing.active:
            self._pairing.start(at)
        for frame in self._reverse.push(samples.tobytes()):
            level = _mean_square(frame)
            frame.userdata[_LEVEL] = level  # (read again when a mic frame takes it)
            self._pairing.push(frame)
            self._gate.render(level, t)

    def skips_silent_block(self, samples: np.ndarray) -> bool:
        """Mic audio (int16, a 10 ms frame or a whole block) that needs no processing: digital
        silence while the speaker has been idle for more than ``_REVERSE_TAIL`` s (there is no
        echo to remove, and the filters would output silence). Counted in ``capture_skipped``."""
        if self.plays_at(now()):
            return False
        self._pairing.stop()  # (the speaker may have stopped reporting altogether)
        if samples.any():
            return False
        self.capture_skipped += samples.size
        return True

    def process_capture(self, frame: rtc.AudioFrame, at: float | None = None) -> rtc.AudioFrame:
        """Process one 10 ms mic frame (in place), whose last sample was captured at ``at`` (the
        loop clock; None: unknown), and return it; during the warm-up the frame comes back
        silent. A frame :meth:`skips_silent_block` skips comes back as it is, unprocessed."""
        if self.skips_silent_block(np.frombuffer(frame.data, dtype=np.int16)):
            return frame
        reverse = self._reverse if self._pairing.active else None  # (active: AEC is on)
        gating = reverse is not None
        playing = False  # the far-end frame paired with this one is audible
        if reverse is not None:
            render = self._pairing.take(at)
            if render is None:
                rate = reverse.sample_rate
                render = rtc.AudioFrame(bytes(rate // 100 * 2), rate, 1, rate // 100)
            else:
                playing = render.userdata[_LEVEL] > _ERLE_FAR_LEVEL
            self._call(self._apm.process_reverse_stream, render)
        showing = self._aec and now() < self._far_active_until
        before = _energy(frame) if gating else 0.0
        if self._aec:
            self._call(self._apm.set_stream_delay_ms, self.stream_delay_ms)
        self._call(self._apm.process_stream, frame)
        after = _energy(frame) if gating else 0.0
        if playing:  # (not the tail after it: mostly noise, which the AGC raises)
            self._measure_erle(before, after)
        elif not showing and self.erle_db is not None:
            self.erle_db = None
            self._erle_in = self._erle_out = 0.0
            self._erle_frames = 0
        warm = self.in_warmup
        n = frame.samples_per_channel * frame.num_channels * 32768.0**2
        if warm or (gating and self._gate.leaked(before / n, after / n, now())):
            silent = rtc.AudioFrame(
                bytes(frame.samples_per_channel * frame.num_channels * 2),
                frame.sample_rate,
                frame.num_channels,
                frame.samples_per_channel,
            )
            silent.userdata["echo_warmup" if warm else "echo_suppressed"] = True
            return silent
        return frame

    def _measure_erle(self, before: float, after: float) -> None:
        """Over windows of half a second of speaker activity (near-end speech lowers it: this
        is what the canceller achieved, not a lab figure)."""
        self._erle_in += before
        self._erle_out += after
        self._erle_frames += 1
        if self._erle_frames >= _ERLE_WINDOW_FRAMES:
            if self._erle_in > _ERLE_MIN_ENERGY:  # (no echo at all: nothing to say)
                ratio = self._erle_in / max(self._erle_out, 1e-9)
                self.erle_db = 10.0 * math.log10(max(ratio, 1e-9))
            self._erle_in = self._erle_out = 0.0
            self._erle_frames = 0

    def _call(self, fn: Callable[[Any], None], arg: Any) -> None:
        try:
            fn(arg)
        except RuntimeError as e:  # a bad frame size: log once, keep the audio flowing
            if not self._failed:
                self._failed = True
                logger.warning("echo cancellation failed: %s", e)
