"""Availability of the providers behind a ``FallbackAdapter`` (LLM, STT or TTS): which to try,
marking failures, and probing failed providers in the background until they work again."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from .utils.aio import TaskSet

logger = logging.getLogger("voicetui.agents")

MAX_RECOVERY_INTERVAL = 60.0
"""Upper bound of the (doubling) delay between two recovery probes of a failed provider."""


class _Labelled(Protocol):
    @property
    def label(self) -> str: ...


P = TypeVar("P", bound=_Labelled)


@dataclass
class _Status:
    available: bool = True
    recovering: asyncio.Task[None] | None = None


class ProviderAvailability(Generic[P]):
    """``on_change(provider, available)`` is called on every change; a provider marked
    unavailable is probed every ``recovery_interval`` seconds (doubling, up to
    :data:`MAX_RECOVERY_INTERVAL`) with ``probe`` until it succeeds."""

    def __init__(
        self,
        providers: list[P],
        *,
        name: str,
        tasks: TaskSet,
        recovery_interval: float,
        probe: Callable[[P], Awaitable[None]],
        on_change: Callable[[P, bool], None],
    ) -> None:
        self._providers = providers
        self._name = name
        self._tasks = tasks
        self._recovery_interval = recovery_interval
        self._probe = probe
        self._on_change = on_change
        self._status = [_Status() for _ in providers]
        self._closed = False

    def is_available(self, provider: P) -> bool:
        return self._status[self._providers.index(provider)].available

    def candidates(self) -> list[int]:
        """Indexes of the providers to try, in order: the available ones, or all if none is."""
        up = [i for i, s in enumerate(self._status) if s.available]
        return up or list(range(len(self._providers)))

    def mark_unavailable(self, index: int) -> None:
        status = self._status[index]
        if status.available:
            status.available = False
            self._on_change(self._providers[index], False)
        if status.recovering is None and not self._closed:
            status.recovering = self._tasks.create(
                self._recover(index), name=f"{self._name}.recover[{index}]"
            )

    def mark_available(self, index: int) -> None:
        status = self._status[index]
        task, status.recovering = status.recovering, None
        if task is not None and task is not asyncio.current_task():
            task.cancel()  # still owned by the TaskSet, which awaits it on close
        if not status.available:
            status.available = True
            logger.info("%s is available again", self._providers[index].label)
            self._on_change(self._providers[index], True)

    def close(self) -> None:
        """No more recovery probes (the owner's TaskSet cancels the running ones)."""
        self._closed = True
        for status in self._status:
            status.recovering = None

    async def _recover(self, index: int) -> None:
        provider = self._providers[index]
        delay = self._recovery_interval
        while True:
            await asyncio.sleep(delay)
            try:
                await self._probe(provider)
            except Exception as e:
                logger.debug("%s still failing: %s", provider.label, e)
                delay = min(delay * 2, max(MAX_RECOVERY_INTERVAL, self._recovery_interval))
                continue
            self.mark_available(index)
            return
