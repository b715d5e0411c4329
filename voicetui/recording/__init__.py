"""Recording sessions to disk (crash-safe) and replaying them.

- :class:`Recorder` records a running session: ``audio.wav`` (stereo, time-aligned: left the
  user as the pipeline heard it, right the agent as played), ``user.wav``, ``agent.wav``,
  ``events.jsonl``, ``transcript.md`` and ``session.json``.
- :func:`load_recording` reads a recording back; :func:`repair` fixes one whose writer died.
- :func:`replay` feeds a recording's user audio to a new session (a new recording);
  :func:`diff` compares two recordings side by side.
"""

from __future__ import annotations

from .diff import Comparison, compare, diff, format_recording
from .load import (
    RecordedEvent,
    Recording,
    load_recording,
)
from .recorder import Recorder, RecordingError
from .repair import read_wav, repair, repair_main
from .replay import ReplayAudioInput, replay, replay_and_diff, replay_main
from .secrets import SecretMasker
from .taps import RecordingAudioInput, RecordingAudioOutput, unwrap_input, unwrap_output

__all__ = [
    "Comparison",
    "RecordedEvent",
    "Recorder",
    "Recording",
    "RecordingAudioInput",
    "RecordingAudioOutput",
    "RecordingError",
    "ReplayAudioInput",
    "SecretMasker",
    "compare",
    "diff",
    "format_recording",
    "load_recording",
    "read_wav",
    "repair",
    "repair_main",
    "replay",
    "replay_and_diff",
    "replay_main",
    "unwrap_input",
    "unwrap_output",
]
