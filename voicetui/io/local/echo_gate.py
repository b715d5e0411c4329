"""A last line against the agent's own voice: mic frames that are echo the canceller let
through are silenced.

While the canceller is converged it takes 40–60 dB off the echo and this gate does nothing.
When it is not (its first moments, a jump in the echo's delay after an underrun, a machine so
busy that its input comes in bursts), the agent's voice comes through at nearly its full level
and would sound like the user talking over the agent. A frame is taken for such a leak when
the canceller took less than 20 dB off it *and* no near-end talker can be in it: the mic
is not louder than the loudest render audio of the last 0.5 s times the echo return loss
(the Geigel double-talk detector, with the loss learned while the canceller is converged:
0 dB, the worst case, until then), with 3 dB of margin; once a near-end talker is heard the
mic stays open for 0.2 s (the detector's hangover: quieter syllables are kept). A user
talking over the agent is louder at the mic than the agent's echo, so barge-in keeps
working; a user quieter than the echo is only heard while the canceller is converged. Only
while the agent's audio is playing."""

from __future__ import annotations

import math
from collections import deque

_WINDOW = 0.5  # s of render audio (by arrival) that can be the source of the mic's echo
_FAR_ACTIVE = 10 ** (-50 / 10)  # render mean square (full scale = 1) above -50 dBFS
_CONVERGED = 0.01  # the canceller took 20 dB or more off the frame
_DOUBLE_TALK_MARGIN = 2.0  # a near-end talker: 3 dB above the echo the render explains
_ERL_MAX = 4.0  # an echo 6 dB louder than what was played: not believed
_ERL_FRAMES = 200  # the loss is the loudest echo / render ratio of the last 2 s of echo alone
_ERL_MIN_FRAMES = 50  # until half a second of it, 0 dB (the worst case) is assumed
_HANGOVER = 0.2  # s: once a near-end talker is heard, the mic stays open this long


class EchoGate:
    def __init__(self) -> None:
        self._far: deque[tuple[float, float]] = deque()  # (arrived at, mean square)
        # echo power at the mic / render power, on mic frames of cancelled echo alone
        self._ratios: deque[float] = deque(maxlen=_ERL_FRAMES)
        self._near_until = float("-inf")
        self.suppressed_frames = 0
        """Mic frames silenced as leaked echo."""

    @property
    def echo_gain(self) -> float:
        """Echo power at the mic / render power: the loudest of the last 2 s of cancelled
        echo alone (each mic frame against the loudest render that can have caused it, so
        the loudest ratio is the coupling); 1 (0 dB) until half a second of it is known."""
        if len(self._ratios) < _ERL_MIN_FRAMES:
            return 1.0
        return min(_ERL_MAX, max(self._ratios))

    @property
    def echo_return_loss_db(self) -> float:
        return -10.0 * math.log10(max(self.echo_gain, 1e-12))

    def render(self, mean_square: float, at: float) -> None:
        """A render block (mean square, full scale = 1) the speaker played, arrived at ``at``
        (by arrival, not by pairing: the source of an echo arrives before it, whatever the
        two streams' timing troubles)."""
        self._far.append((at, mean_square))

    def leaked(self, mic_in: float, mic_out: float, at: float) -> bool:
        """Whether the mic frame (mean square before / after the canceller) is leaked echo."""
        while self._far and self._far[0][0] < at - _WINDOW:
            self._far.popleft()
        far = max((ms for _, ms in self._far), default=0.0)
        if far < _FAR_ACTIVE:
            return False
        near_end = mic_in > _DOUBLE_TALK_MARGIN * self.echo_gain * far
        converged = mic_out <= _CONVERGED * mic_in
        if converged and not near_end:  # (echo alone, cancelled: learn its loss)
            self._ratios.append(mic_in / far)
        if near_end:  # (speech is not loud in every frame: keep the talker's words whole)
            self._near_until = at + _HANGOVER
        leaked = not converged and at >= self._near_until
        if leaked:
            self.suppressed_frames += 1
        return leaked
