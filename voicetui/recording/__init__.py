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
    AgentReply,
    Latency,
    RecordedEvent,
    Recording,
    ToolCallRecord,
    Turn,
    load_recording,
)
from .recorder import Recorder, RecordingError
from .repair import read_wav, repair, repair_main
from .replay import ReplayAudioInput, replay, replay_and_diff, replay_main
from .secrets import SecretMasker
from .taps import RecordingAudioInput, RecordingAudioOutput, unwrap_input, unwrap_output
from .transcript import TranscriptEntry, parse_transcript

__all__ = [
    "AgentReply",
    "Comparison",
    "Latency",
    "RecordedEvent",
    "Recorder",
    "Recording",
    "RecordingAudioInput",
    "RecordingAudioOutput",
    "RecordingError",
    "ReplayAudioInput",
    "SecretMasker",
    "ToolCallRecord",
    "TranscriptEntry",
    "Turn",
    "compare",
    "diff",
    "format_recording",
    "load_recording",
    "parse_transcript",
    "read_wav",
    "repair",
    "repair_main",
    "replay",
    "replay_and_diff",
    "replay_main",
    "unwrap_input",
    "unwrap_output",
]
