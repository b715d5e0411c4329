"""Timers that call back when they fire (the agent then speaks), on the session's loop."""

from __future__ import annotations

import asyncio
import inspect
import itertools
import logging
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
            else f"the {describe_duration(self.duration)} timer"
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
