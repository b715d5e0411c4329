"""Retrying a model call (LLM, STT, TTS) or restarting a failed stream (VAD, STT): one backoff
policy for all of them.

A recoverable :class:`~voicetui.agents.exceptions.ModelError` is retried up to
``APIConnectOptions.max_retry`` times with exponential backoff. A server that says when to come
back (HTTP ``Retry-After``: seconds or a date, carried as ``ModelError.retry_after``) is waited
for — at least the backoff, never less than it asks; one that asks for more than
:data:`MAX_RETRY_AFTER` seconds is not retried at all (a conversation cannot wait that long,
and retrying sooner would be refused again).

:func:`with_retries` retries one call; :class:`Backoff` counts the consecutive failures of a
long-lived stream that is restarted (a success resets it).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import TypeVar

from .exceptions import ModelError
from .types import APIConnectOptions

logger = logging.getLogger("voicetui.agents")

T = TypeVar("T")
MAX_RETRY_AFTER = 60.0
"""Seconds: a longer ``Retry-After`` ends the retries."""


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from an HTTP ``Retry-After`` value (delay-seconds or an HTTP date), or
    None when absent or unreadable. Never negative."""
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            return None
        seconds = when.timestamp() - (time.time() if now is None else now)
    if seconds != seconds or seconds in (float("inf"), float("-inf")):  # nan, inf
        return None
    return max(0.0, seconds)


def retry_delay(options: APIConnectOptions, attempt: int, error: ModelError) -> float | None:
    """Seconds before retry number ``attempt`` (0-based) after ``error``; None: do not retry
    (the server asks for more than :data:`MAX_RETRY_AFTER`)."""
    backoff = options.interval_for_retry(attempt)
    asked = error.retry_after
    if asked is None:
        return backoff
    if asked > MAX_RETRY_AFTER:
        return None
    return max(backoff, asked)


@dataclass
class Backoff:
    """Consecutive failures under ``options``: how long to wait after each, and when to stop."""

    options: APIConnectOptions
    failures: int = 0

    @property
    def exhausted(self) -> bool:
        """More failures than ``options.max_retry`` allows retries for."""
        return self.failures > self.options.max_retry

    def reset(self) -> None:
        """It worked again: the next failure starts the backoff over."""
        self.failures = 0

    def next_delay(self, error: BaseException) -> float | None:
        """Count ``error``; seconds to wait before trying again, or None: give up (retries
        exhausted, or a :class:`ModelError` whose server asks for too long a wait)."""
        self.failures += 1
        if self.exhausted:
            return None
        attempt = self.failures - 1
        if isinstance(error, ModelError):
            return retry_delay(self.options, attempt, error)
        return self.options.interval_for_retry(attempt)


async def with_retries(
    attempt: Callable[[], Awaitable[T]],
    *,
    options: APIConnectOptions,
    error_type: type[ModelError],
    label: str,
    may_retry: Callable[[], bool] = lambda: True,
) -> T:
    """``attempt()`` until it returns, retrying recoverable ``error_type`` errors as the module
    says. ``may_retry()``: False once a retry would repeat what the caller already passed on
    (the LLM's first chunk, the TTS's first frame)."""
    backoff = Backoff(options)
    while True:
        try:
            return await attempt()
        except error_type as e:
            if not e.recoverable or not may_retry():
                raise
            delay = backoff.next_delay(e)
            if delay is None:
                if not backoff.exhausted:
                    logger.warning(
                        "%s failed (%s); the server asks to wait %.0fs: not retried",
                        label,
                        e.message,
                        e.retry_after,
                    )
                raise
            logger.warning(
                "%s failed (%s), retrying in %.1fs (%d/%d)",
                label,
                e.message,
                delay,
                backoff.failures,
                options.max_retry,
            )
            await asyncio.sleep(delay)
