"""What listening reports, and how: the contract between :class:`AudioRecognition` (it hears)
and the activity's turn-taking (it acts on what is heard, see ``turn_taking.py``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from ..metrics import STTMetrics, VADMetrics
from ..stt import SpeechEvent
from ..vad import VADEvent


@dataclass
class EndOfTurnInfo:
    """A user turn ready to be committed."""

    new_transcript: str
    started_speaking_at: float | None
    """Loop time the user started speaking (None if unknown, e.g. manual commit of text)."""
    stopped_speaking_at: float | None
    """Loop time the user's voice ended (VAD end of speech minus its silence window)."""
    transcription_delay: float
    """From the end of the user's voice to the last final transcript."""
    end_of_utterance_delay: float
    """From the end of the user's voice to this commit."""
    transcript_confidence: float = 1.0
    end_of_turn_probability: float | None = None
    """What the end-of-turn model said at the last pause (None: no model, or it failed)."""
    end_of_turn_threshold: float | None = None


class RecognitionHooks(Protocol):
    def on_start_of_speech(self, ev: VADEvent | None, at: float) -> None:
        """The user's voice started at ``at`` (loop time; earlier than now when the VAD
        waited for enough speech to be sure)."""

    def on_vad_inference_done(self, ev: VADEvent) -> None: ...
    def on_end_of_speech(self, ev: VADEvent | None, at: float) -> None:
        """The user's voice ended at ``at`` (loop time: the end of the audio heard as speech;
        the same instant end-of-turn delays and end-to-end latency count from)."""

    def on_interim_transcript(self, ev: SpeechEvent) -> None: ...
    def on_final_transcript(self, ev: SpeechEvent) -> None: ...
    def on_preemptive_generation(self, transcript: str) -> None: ...
    def discard_preemptive(self) -> None:
        """A preemptive reply started on a preflight transcript no longer holds."""

    def on_end_of_turn(self, info: EndOfTurnInfo) -> bool:
        """Commit the turn; False keeps the transcript for the next turn."""
        ...

    def on_metrics(self, metrics: STTMetrics | VADMetrics) -> None: ...
    def on_error(
        self, source: str, message: str, exc: BaseException, recoverable: bool
    ) -> None: ...


@dataclass
class EndpointingOptions:
    min_delay: float
    max_delay: float
