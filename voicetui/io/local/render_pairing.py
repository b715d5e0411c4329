"""Far-end (render) frames paired one to one with the mic's frames, for the echo canceller.

WebRTC's AEC3 pairs the two streams by call count: it reads the render audio at a fixed
offset from the capture calls, and absorbs only a little jitter in how the calls interleave.
Fed in the order the loop gets to the blocks, a busy machine delivers them in bursts (ten
speaker blocks, then ten mic blocks): the canceller's render buffer under- and overruns, it
searches for the delay again, and the agent's voice leaks into the mic meanwhile (measured:
residual echo at the input's level for up to 0.7 s; the same audio fed one to one is
cancelled by 50 dB throughout). So each mic frame takes exactly one render frame: the k-th mic
frame after the agent's audio (re)starts takes the (k - ``lag``)-th render frame, or silence
if that one has not arrived yet. A render frame that arrives after its turn means the
speaker's callback ran late, so the device ran dry and played silence meanwhile, and the echo
comes that much later: the pairing moves with it. ``lag`` keeps the render frame's arrival
ahead of its mic frame on a busy loop; the canceller sees it as that much more echo delay."""

from __future__ import annotations

from collections import deque

from livekit import rtc

_MAX_QUEUED = 200  # render frames (2 s) kept while no mic frame comes to take them


class RenderPairing:
    def __init__(self, lag_frames: int) -> None:
        self.lag_frames = lag_frames
        self.active = False
        """Render audio is flowing (the agent spoke within the canceller's tail)."""
        self._queue: deque[tuple[int, rtc.AudioFrame]] = deque()
        self._pushed = 0
        self._captured = 0
        self._start_at: float | None = None
        self.late_frames = 0
        """Mic frames paired with silence because their render frame had not arrived."""
        self.resyncs = 0
        """Times a render frame came after its turn and the pairing moved with it."""

    def start(self, at: float | None = None) -> None:
        """The agent's audio starts after an idle stretch, its first block handed to the
        device at ``at`` (the loop clock): count both streams from there (mic frames captured
        before it are not counted: on a busy loop a backlog of them comes after the first
        render block, and counting them would show the canceller a longer delay than its
        search covers)."""
        self.active = True
        self._queue.clear()
        self._pushed = self._captured = 0
        self._start_at = at

    def stop(self) -> None:
        self.active = False
        self._queue.clear()

    def push(self, frame: rtc.AudioFrame) -> None:
        self._queue.append((self._pushed, frame))
        self._pushed += 1
        if len(self._queue) > _MAX_QUEUED:  # (the mic is not running)
            self._queue.popleft()

    def take(self, captured_at: float | None = None) -> rtc.AudioFrame | None:
        """The render frame for the next mic frame, whose last sample was captured at
        ``captured_at`` (the loop clock); None: pair it with silence."""
        if captured_at is not None and self._start_at is not None and captured_at < self._start_at:
            return None  # (captured before the agent's audio started)
        wanted = self._captured - self.lag_frames
        self._captured += 1
        if self._queue and self._queue[0][0] < wanted:
            # it came after its turn: its callback ran late, so the device ran dry and
            # played silence meanwhile, and its echo comes that much later: pair it now
            self.resyncs += 1
            wanted = self._queue[0][0]
            self._captured = wanted + self.lag_frames + 1
        if wanted < 0:
            return None
        if self._queue and self._queue[0][0] == wanted:
            return self._queue.popleft()[1]
        self.late_frames += 1
        return None
