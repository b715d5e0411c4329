"""Python logging for front ends: a handler that turns records into :class:`LogRecordEvent` for
subscribers (the TUI's Logs tab) and keeps the last ones in a ring.

:meth:`LogCapture.install` makes it the only place logging goes while the TUI runs: terminal
handlers (stream handlers on stdout/stderr, anywhere in the logger tree) are removed, warnings
are routed through logging, and uncaught exceptions in threads are logged instead of printed.
:meth:`LogCapture.uninstall` puts everything back.
"""

from __future__ import annotations

import logging
import sys
import threading
import warnings
from collections import deque
from collections.abc import Callable
from typing import Any

from .api import LogRecordEvent

LogSubscriber = Callable[[LogRecordEvent], None]

_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
    "critical": logging.CRITICAL,
}


def level_number(level: str | int) -> int:
    if isinstance(level, int):
        return level
    try:
        return _LEVELS[level.lower()]
    except KeyError:
        raise ValueError(f"unknown log level {level!r}; use one of {', '.join(_LEVELS)}") from None


def _is_terminal_handler(handler: logging.Handler) -> bool:
    if isinstance(handler, logging.FileHandler):
        return False
    if not isinstance(handler, logging.StreamHandler):
        return False
    stream = getattr(handler, "stream", None)
    return stream in (sys.stderr, sys.stdout, sys.__stderr__, sys.__stdout__)


class SanitizingFormatter(logging.Formatter):
    """Log lines printed on a terminal: each passed through ``sanitize`` (the runtime's
    :class:`~voicetui.untrusted.Sanitizer`: control sequences out, secrets masked)."""

    def __init__(self, sanitize: Callable[[str], str], fmt: str) -> None:
        super().__init__(fmt)
        self._sanitize = sanitize

    def format(self, record: logging.LogRecord) -> str:
        return self._sanitize(super().format(record))


class LogCapture(logging.Handler):
    """``capacity``: records kept in the ring. Subscribers are called on the thread that logged
    (keep them quick; a subscriber that logs does not recurse into itself)."""

    def __init__(self, level: str | int = logging.INFO, *, capacity: int = 2000) -> None:
        super().__init__(level_number(level))
        self._ring: deque[LogRecordEvent] = deque(maxlen=capacity)
        self._subscribers: list[LogSubscriber] = []
        self._sub_lock = threading.Lock()
        self._delivering = threading.local()
        self._installed = False
        self._saved_root_level = logging.NOTSET
        self._removed: list[tuple[logging.Logger, logging.Handler]] = []
        self._attached: list[logging.Logger] = []
        self._saved_excepthook: Any = None
        self._saved_showwarning: Any = None
        self._saved_last_resort: logging.Handler | None = None

    # --- subscribers ----------------------------------------------------------------------
    def subscribe(self, callback: LogSubscriber) -> Callable[[], None]:
        with self._sub_lock:
            self._subscribers = [*self._subscribers, callback]

        def unsubscribe() -> None:
            with self._sub_lock:
                self._subscribers = [s for s in self._subscribers if s is not callback]

        return unsubscribe

    def records(self) -> list[LogRecordEvent]:
        """The records kept so far, oldest first."""
        with self._sub_lock:
            return list(self._ring)

    # --- logging.Handler ------------------------------------------------------------------
    def emit(self, record: logging.LogRecord) -> None:
        if getattr(self._delivering, "active", False):
            return  # logged by a subscriber while we deliver: would recurse
        try:
            message = record.getMessage()
        except Exception as e:  # a bad format string must not take the app down
            message = f"{record.msg!r} (unformattable: {e})"
        if record.exc_info and record.exc_info[0] is not None:
            message = f"{message}\n{logging.Formatter().formatException(record.exc_info)}"
        elif record.exc_text:
            message = f"{message}\n{record.exc_text}"
        event = LogRecordEvent(
            level=record.levelno, logger=record.name, message=message, created=record.created
        )
        with self._sub_lock:
            self._ring.append(event)
            subscribers = self._subscribers
        self._delivering.active = True
        try:
            for callback in subscribers:
                try:
                    callback(event)
                except Exception:  # a failing subscriber must not break logging
                    pass
        finally:
            self._delivering.active = False

    def handleError(self, record: logging.LogRecord) -> None:
        """Never print a traceback to the terminal."""

    # --- installing -----------------------------------------------------------------------
    @property
    def installed(self) -> bool:
        return self._installed

    def install(self) -> None:
        """Route every log record here and nowhere on the terminal, until :meth:`uninstall`."""
        if self._installed:
            return
        self._installed = True
        root = logging.getLogger()
        self._saved_root_level = root.level
        root.setLevel(min(self.level, root.level) if root.level else self.level)
        loggers: list[logging.Logger] = [root]
        for obj in list(logging.Logger.manager.loggerDict.values()):
            if isinstance(obj, logging.Logger):
                loggers.append(obj)
        for logger in loggers:
            for handler in list(logger.handlers):
                if _is_terminal_handler(handler):
                    logger.removeHandler(handler)
                    self._removed.append((logger, handler))
            if logger is not root and not logger.propagate and self not in logger.handlers:
                logger.addHandler(self)  # its records would not reach the root
                self._attached.append(logger)
        root.addHandler(self)
        self._saved_last_resort = logging.lastResort
        logging.lastResort = self  # loggers created later without handlers end up here too
        logging.captureWarnings(True)
        self._saved_showwarning = warnings.showwarning
        self._saved_excepthook = threading.excepthook
        threading.excepthook = self._thread_excepthook

    def uninstall(self) -> None:
        if not self._installed:
            return
        self._installed = False
        root = logging.getLogger()
        root.removeHandler(self)
        for logger in self._attached:
            logger.removeHandler(self)
        self._attached.clear()
        for logger, handler in self._removed:
            logger.addHandler(handler)
        self._removed.clear()
        root.setLevel(self._saved_root_level)
        logging.lastResort = self._saved_last_resort
        logging.captureWarnings(False)
        if self._saved_showwarning is not None:
            warnings.showwarning = self._saved_showwarning
        if self._saved_excepthook is not None:
            threading.excepthook = self._saved_excepthook

    def __enter__(self) -> LogCapture:
        self.install()
        return self

    def __exit__(self, *exc: object) -> None:
        self.uninstall()

    @staticmethod
    def _thread_excepthook(args: threading.ExceptHookArgs) -> None:
        if args.exc_type is SystemExit:
            return
        name = args.thread.name if args.thread is not None else "?"
        exc_info = (args.exc_type, args.exc_value or args.exc_type(), args.exc_traceback)
        logging.getLogger("voicetui").error(
            "uncaught exception in thread %s", name, exc_info=exc_info
        )
