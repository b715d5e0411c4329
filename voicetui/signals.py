"""SIGTERM and SIGHUP end voicetui like Ctrl-C does: the session closes (bounded wait), a
recording is finalised, the terminal is restored; the exit code is 128 + the signal's number.

Two ways in, one behaviour:

- a program running on the main thread (``--headless``) wraps its run in
  :func:`signals_as_interrupt`: the signal raises :class:`Terminated`, a ``KeyboardInterrupt``,
  where Ctrl-C would raise its own, so the same ``except``/``finally`` close it;
- an asyncio application (the TUI) calls :func:`on_terminate` with its own ``exit``, run on its
  loop; what was there before (a :func:`signals_as_interrupt` around the app, for the close
  after it) is put back when it stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import threading
from collections.abc import Callable, Iterator
from types import FrameType

SIGNALS: tuple[signal.Signals, ...] = (signal.SIGTERM, signal.SIGHUP)
INTERRUPT_EXIT = 130
"""Ctrl-C's exit code (128 + SIGINT)."""


class Terminated(KeyboardInterrupt):
    """A SIGTERM or SIGHUP, raised in the main thread."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"signal {signum}")
        self.signum = signum


def exit_code(interrupt: KeyboardInterrupt) -> int:
    """130 for Ctrl-C, 128 + the signal's number for :class:`Terminated`."""
    return 128 + interrupt.signum if isinstance(interrupt, Terminated) else INTERRUPT_EXIT


@contextlib.contextmanager
def signals_as_interrupt() -> Iterator[None]:
    """Within: SIGTERM and SIGHUP raise :class:`Terminated` in the main thread (nothing
    changes when called from another thread)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def raise_terminated(signum: int, frame: FrameType | None) -> None:
        raise Terminated(signum)

    saved = {sig: signal.signal(sig, raise_terminated) for sig in SIGNALS}
    try:
        yield
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)


def on_terminate(
    loop: asyncio.AbstractEventLoop, callback: Callable[[int], None]
) -> Callable[[], None]:
    """Call ``callback(exit code)`` on ``loop`` at SIGTERM or SIGHUP; returns the function
    that removes the handlers. Does nothing off the main thread."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    saved = {sig: signal.getsignal(sig) for sig in SIGNALS}
    for sig in SIGNALS:
        loop.add_signal_handler(sig, callback, 128 + sig)

    def remove() -> None:
        for sig, handler in saved.items():
            loop.remove_signal_handler(sig)
            signal.signal(sig, handler)  # (the loop leaves the default: killed at once)

    return remove
