"""Timers that call back when they fire (the agent then speaks), on the session's loop."""

from __future__ import annotations

import asyncio
import inspect
import itertools
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

logger = logging.getLogger("voicetui.default_agent")

MAX_TIMERS = 20
MAX_DURATION = 24 * 3600.0


def describe_duration(seconds: float) -> str:
    """``90`` → ``"1 minute 30 seconds"`` (as said aloud)."""
    total = max(0, round(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [
        f"{n} {unit}{'s' if n != 1 else ''}"
        for n, unit in ((hours, "hour"), (minutes, "minute"), (secs, "second"))
        if n
    ]
    return " ".join(parts) if parts else "0 seconds"


def _singular(duration: str) -> str:
    """``"5 minutes"`` → ``"5 minute"`` (as in "the 5 minute timer")."""
    return re.sub(r"\b(hour|minute|second)s\b", r"\1", duration)


_UNIT_SECONDS = {"h": 3600.0, "m": 60.0, "s": 1.0}  # by the unit's first letter
_WORD_NUMBERS = {
    "a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6,
    "seven": 7, "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "fifteen": 15,
    "twenty": 20, "thirty": 30, "forty": 40, "forty-five": 45, "fifty": 50, "sixty": 60,
    "ninety": 90, "half": 0.5, "half an": 0.5, "half a": 0.5,
}  # fmt: skip
_DURATION_PART = re.compile(
    r"(\d+(?:\.\d+)?|half an?|" + "|".join(sorted(_WORD_NUMBERS, key=len, reverse=True)) + r")"
    r"[\s-]*(hours?|hrs?|h|minutes?|mins?|m|seconds?|secs?|s)\b"
)


def parse_duration(text: str) -> float:
    """``"1 hour 30 minutes"``, ``"five minutes"``, ``"90 seconds"``, ``"300"`` → seconds.
    Raises ValueError with a readable message."""
    cleaned = text.strip().casefold()
    try:
        return float(cleaned)  # a bare number: seconds
    except ValueError:
        pass
    total = 0.0
    found = False
    for amount, unit in _DURATION_PART.findall(cleaned):
        number = _WORD_NUMBERS.get(amount)
        value = float(amount) if number is None else float(number)
        total += value * _UNIT_SECONDS[unit[0]]
        found = True
    if not found:
        raise ValueError(f"{text!r} is not a duration; say it like 5 minutes or 90 seconds")
    return total


@dataclass
class Timer:
    id: int
    label: str
    duration: float
    fires_at: float
    """Loop time."""
    task: asyncio.Task[None] | None = field(default=None, repr=False)

    def remaining(self) -> float:
        return max(0.0, self.fires_at - asyncio.get_running_loop().time())

    def describe(self) -> str:
        return (
            f"the {self.label} timer"
            if self.label
            else f"the {_singular(describe_duration(self.duration))} timer"
        )


OnFire = Callable[[Timer], "Awaitable[None] | None"]


class TimerManager:
    def __init__(self, on_fire: OnFire) -> None:
        self._on_fire = on_fire
        self._timers: dict[int, Timer] = {}
        self._ids = itertools.count(1)

    def active(self) -> list[Timer]:
        return sorted(self._timers.values(), key=lambda t: t.fires_at)

    def start(self, seconds: float, label: str = "") -> Timer:
        """Start a timer (call on the loop)."""
        if not seconds > 0:
            raise ValueError("a timer needs a duration above 0 seconds")
        if seconds > MAX_DURATION:
            raise ValueError("timers are limited to 24 hours")
        if len(self._timers) >= MAX_TIMERS:
            raise ValueError(f"there are already {MAX_TIMERS} timers running")
        loop = asyncio.get_running_loop()
        timer = Timer(next(self._ids), label.strip(), seconds, loop.time() + seconds)
        timer.task = loop.create_task(self._run(timer), name=f"timer {timer.id}")
        self._timers[timer.id] = timer
        return timer

    async def _run(self, timer: Timer) -> None:
        try:
            await asyncio.sleep(timer.duration)
        finally:
            self._timers.pop(timer.id, None)
        try:
            result = self._on_fire(timer)
            if inspect.isawaitable(result):
                await result
        except Exception:
            logger.exception("announcing %s failed", timer.describe())

    def find(self, label: str = "") -> list[Timer]:
        """Timers whose label contains ``label`` (all of them for an empty label)."""
        needle = label.strip().casefold()
        return (
            [t for t in self.active() if needle in t.label.casefold()] if needle else self.active()
        )

    def cancel(self, label: str = "") -> list[Timer]:
        timers = self.find(label)
        for t in timers:
            self.cancel_timer(t)
        return timers

    def cancel_timer(self, timer: Timer) -> None:
        self._timers.pop(timer.id, None)
        if timer.task is not None:
            timer.task.cancel()

    def cancel_all(self) -> None:
        self.cancel("")
