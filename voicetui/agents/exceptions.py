"""Errors raised by model providers. ``recoverable`` tells the session whether a retry may help."""

from __future__ import annotations


class ModelError(Exception):
    """A model call failed. The message is meant for the user: short, specific, actionable."""

    source = "model"

    def __init__(
        self, message: str, *, recoverable: bool = True, retry_after: float | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.recoverable = recoverable
        self.retry_after = retry_after
        """Seconds the server asked to wait before a retry (HTTP ``Retry-After``), if it did."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r}, recoverable={self.recoverable})"


class LLMError(ModelError):
    source = "llm"


class STTError(ModelError):
    source = "stt"


class TTSError(ModelError):
    source = "tts"


class VADError(ModelError):
    source = "vad"
