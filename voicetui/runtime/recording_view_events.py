"""A recording's ``events.jsonl`` lines back into the events a front end gets from a live
runtime (:data:`~voicetui.runtime.api.RuntimeEvent`), so the TUI renders a recording with its
usual handlers.

The recorder's own notes (recording started and stopped, audio attached, playback marks, gaps)
and types this version does not know become log records (and a notice for lost audio).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from pydantic import ValidationError

from ..agents.voice.events import SpeechCreatedEvent
from ..recording.event_log import (
    AudioAttached,
    AudioInputAttached,
    AudioInputDetached,
    AudioPlaybackFinished,
    AudioPlaybackStarted,
    RecordedBody,
    RecordingGap,
    RecordingStarted,
    RecordingStopped,
    decode,
)
from ..recording.load import RecordedEvent
from ..recording.transcript import fmt_time
from .api import AudioLevels, LogRecordEvent, Notice, RuntimeEvent, RuntimeStatus

LOGGER = "voicetui.recording"


def status_for_viewing(status: RuntimeStatus) -> RuntimeStatus:
    """A recorded status without its recording indicator (the viewer is not recording)."""
    return status.model_copy(update={"recording_dir": None, "recording_since": None})


def _log(ev: RecordedEvent, message: str, level: int = logging.INFO) -> LogRecordEvent:
    return LogRecordEvent(level=level, logger=LOGGER, message=message, created=ev.wall)


def to_runtime_events(ev: RecordedEvent) -> list[RuntimeEvent]:
    """The events a live runtime sent for one recorded line (often one, none for lines a
    viewer has no use for). Raises ValueError (pydantic's ValidationError is one) when the
    line does not hold what its type needs."""
    body: RecordedBody | None = decode(ev.type, ev.event)
    match body:
        case None:  # a type this version does not know (a newer recorder): in the logs
            return [_log(ev, f"{ev.type}: {ev.event}"[:300], logging.DEBUG)]
        case RuntimeStatus():
            return [status_for_viewing(body)]
        case SpeechCreatedEvent() | AudioLevels():
            return []  # (a speech handle cannot be rebuilt; levels are not shown afterwards)
        case RecordingStarted():
            return [_log(ev, f"recording started in {body.directory or '?'}")]
        case AudioAttached():
            return [_log(ev, f"audio: input {body.input}, output {body.output}")]
        case AudioInputAttached():
            return [_log(ev, f"microphone attached: {body.label}")]
        case AudioInputDetached():
            return [_log(ev, f"microphone detached: {body.label}")]
        case AudioPlaybackStarted():
            return [_log(ev, f"agent audio {body.segment} started", logging.DEBUG)]
        case AudioPlaybackFinished():
            cut = " (interrupted)" if body.interrupted else ""
            text = f"agent audio {body.segment} finished at {body.playback_position:.2f} s{cut}"
            return [_log(ev, text, logging.DEBUG)]
        case RecordingStopped():
            duration = body.duration if body.duration is not None else ev.t
            return [_log(ev, f"recording stopped after {fmt_time(duration)}")]
        case RecordingGap():
            text = (
                f"{body.duration:.1f} s of audio were not recorded at {fmt_time(body.start)} "
                "(the disk was too slow)"
            )
            return [Notice(level="warning", message=text), _log(ev, text, logging.WARNING)]
        case _:
            return [body]


@dataclass
class Conversion:
    """Every recorded line converted, in order, with what could not be."""

    events: list[tuple[RecordedEvent, list[RuntimeEvent]]] = field(default_factory=list)
    unreadable: int = 0
    first_error: str = ""

    def events_of(self, kind: str) -> list[RecordedEvent]:
        return [recorded for recorded, _ in self.events if recorded.type == kind]

    def problem(self) -> str | None:
        if not self.unreadable:
            return None
        return (
            f"{self.unreadable} event(s) in events.jsonl could not be read and are not shown "
            f"(first: {self.first_error})"
        )


def convert(recorded: list[RecordedEvent]) -> Conversion:
    out = Conversion()
    for ev in recorded:
        try:
            out.events.append((ev, to_runtime_events(ev)))
        except (ValueError, ValidationError) as e:
            out.unreadable += 1
            if not out.first_error:
                detail = str(e).splitlines()[0] if str(e) else type(e).__name__
                out.first_error = f"{ev.type} at {fmt_time(ev.t)}: {detail}"
    return out
