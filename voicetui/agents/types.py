"""Types shared by every model interface."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal


@dataclass(frozen=True, slots=True)
class APIConnectOptions:
    """Retry policy of a model call: ``max_retry`` extra attempts, exponential backoff from
    ``retry_interval`` seconds, and ``timeout`` seconds per attempt."""

    max_retry: int = 3
    retry_interval: float = 2.0
    timeout: float = 10.0

    def __post_init__(self) -> None:
        if self.max_retry < 0:
            raise ValueError("max_retry must be >= 0")
        if self.retry_interval < 0 or self.timeout <= 0:
            raise ValueError("retry_interval must be >= 0 and timeout > 0")

    def interval_for_retry(self, attempt: int) -> float:
        """Backoff before retry number ``attempt`` (0-based): 0 for the first, then doubling."""
        if attempt == 0:
            return 0.1 if self.retry_interval > 0.1 else self.retry_interval
        return float(self.retry_interval * (2 ** (attempt - 1)))

    def with_(self, **changes: float | int) -> APIConnectOptions:
        return replace(self, **changes)  # type: ignore[arg-type]


DEFAULT_API_CONNECT_OPTIONS = APIConnectOptions()


class NotGiven:
    """Sentinel for "argument not given" where ``None`` is a meaningful value."""

    _instance: NotGiven | None = None

    def __new__(cls) -> NotGiven:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __bool__(self) -> Literal[False]:
        return False

    def __repr__(self) -> str:
        return "NOT_GIVEN"


NOT_GIVEN = NotGiven()
