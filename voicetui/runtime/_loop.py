"""The machinery under ``SessionController``: an asyncio loop in a background thread,
thread-safe commands returning ``concurrent.futures.Future``, and event delivery to
subscribers on the loop thread."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Coroutine, Iterable
from concurrent.futures import Future
from typing import Any, TypeVar

from ..agents.exceptions import ModelError
from ..recording.secrets import SecretMasker
from ..untrusted import Sanitizer
from .api import CommandError, Notice, NoticeLevel, RuntimeEvent, Subscription
from .log_capture import LogCapture

logger = logging.getLogger("voicetui.runtime")

T = TypeVar("T")


def readable_error(e: BaseException) -> str:
    """An exception as one line for the user."""
    if isinstance(e, ModelError):
        return e.message
    if isinstance(e, CommandError):
        return str(e)
    text = str(e).strip()
    if isinstance(e, KeyError) and e.args:
        text = str(e.args[0])
    if not text:
        return type(e).__name__
    if isinstance(e, ValueError | OSError | RuntimeError | TypeError | LookupError):
        return text
    return f"{text} ({type(e).__name__})"


class LoopRuntime:
    """Subclasses implement :meth:`_start_session` (run by :meth:`start`),
    :meth:`_close_session` (run by :meth:`stop`) and :meth:`_check_ready` (before each command
    that needs the session).

    Every event and every command error is sanitised on its way out (``voicetui.untrusted``):
    control sequences removed, ``secrets`` and credential shapes masked — front ends and logs
    never see them."""

    def __init__(
        self, *, log_capture: LogCapture | None = None, secrets: Iterable[str] = ()
    ) -> None:
        self._masker = SecretMasker(secrets)
        self.sanitizer = Sanitizer(self._masker.mask_text)
        """What this runtime applies to all it sends out; front ends apply it to the rest
        (their own error texts, log lines they print)."""
        self._lock = threading.Lock()
        self._subs: list[Subscription] = []
        self._failing_subs: set[int] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._thread_id: int | None = None
        self._start_future: Future[None] | None = None
        self._stop_future: Future[None] | None = None
        self._stopping = False
        self._start_task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()  # (binds to the session loop on first use)
        self._start_error: BaseException | None = None
        self._background: set[asyncio.Task[Any]] = set()
        self._log_capture = log_capture
        self._log_unsubscribe = log_capture.subscribe(self._emit) if log_capture else None

    # --- to implement -----------------------------------------------------------------------
    async def _start_session(self) -> None:
        raise NotImplementedError

    async def _close_session(self) -> None:
        raise NotImplementedError

    def _check_ready(self) -> None:
        """Raise if commands cannot run now (called once the start is over)."""

    # --- subscribers ------------------------------------------------------------------------
    def subscribe(
        self, callback: Callable[[RuntimeEvent], None], *, types: Iterable[str] | None = None
    ) -> Callable[[], None]:
        """Receive every event (or only those of ``types``) on the runtime's thread. Returns
        the unsubscribe function."""
        sub = Subscription(callback, frozenset(types) if types is not None else None)
        with self._lock:
            self._subs = [*self._subs, sub]

        def unsubscribe() -> None:
            with self._lock:
                self._subs = [s for s in self._subs if s is not sub]

        return unsubscribe

    def _dispatch(self, ev: RuntimeEvent) -> None:
        ev = self.sanitizer.event(ev)
        for sub in self._subs:
            if sub.types is not None and ev.type not in sub.types:
                continue
            try:
                sub.callback(ev)
            except Exception:
                if id(sub) not in self._failing_subs:
                    self._failing_subs.add(id(sub))
                    logger.exception("a runtime subscriber failed (further failures not logged)")

    def _emit(self, ev: RuntimeEvent) -> None:
        """Deliver ``ev`` on the loop thread (hopping there from other threads)."""
        loop = self._loop
        if (
            loop is not None
            and not loop.is_closed()
            and loop.is_running()
            and threading.get_ident() != self._thread_id
        ):
            try:
                loop.call_soon_threadsafe(self._dispatch, ev)
                return
            except RuntimeError:  # closed meanwhile
                pass
        self._dispatch(ev)

    def _notice(self, level: NoticeLevel, message: str) -> None:
        if level == "info":
            logger.info("%s", message)
        else:
            logger.warning("%s", message)
        self._emit(Notice(level=level, message=message))

    # --- lifecycle --------------------------------------------------------------------------
    @property
    def log_capture(self) -> LogCapture | None:
        """The log handler whose records are forwarded (its ring holds the earlier ones)."""
        return self._log_capture

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive() and not self._stopping

    def join(self, timeout: float | None = None) -> None:
        """Wait until the loop thread has exited (after :meth:`stop`)."""
        if self._thread is not None:
            self._thread.join(timeout)

    def run(self, fn: Callable[[], Coroutine[Any, Any, T]], what: str = "command") -> Future[T]:
        """Run ``fn()`` on the session loop once the session is up (for tests and tools)."""
        return self._submit(what, fn)

    def start(self) -> Future[None]:
        """Start the loop thread, then the session (idempotent)."""
        with self._lock:
            if self._start_future is not None:
                return self._start_future
            if self._stop_future is not None:
                return self._failed("the session runtime was stopped")
            loop = asyncio.new_event_loop()
            self._loop = loop
            self._thread = threading.Thread(
                target=self._thread_main, args=(loop,), name="voicetui-session", daemon=True
            )
            self._thread.start()
            self._start_future = asyncio.run_coroutine_threadsafe(
                self._guard("starting the session", self._run_start, needs_session=False), loop
            )
            return self._start_future

    async def _run_start(self) -> None:
        self._start_task = asyncio.current_task()  # type: ignore[assignment]
        try:
            await self._start_session()
        except BaseException as e:
            self._start_error = e
            raise
        finally:
            self._ready.set()

    def stop(self) -> Future[None]:
        """Close the session and end the loop thread (idempotent). The future is done once the
        loop is closed; :meth:`join` then returns at once."""
        with self._lock:
            if self._stop_future is not None:
                return self._stop_future
            fut: Future[None] = Future()
            self._stop_future = fut
            self._stopping = True
            loop = self._loop
            if loop is None:
                self._unhook_logs()
                fut.set_result(None)
                return fut
        try:
            loop.call_soon_threadsafe(self._begin_shutdown)
        except RuntimeError:  # the loop is gone already
            if not fut.done():
                fut.set_result(None)
        return fut

    def _unhook_logs(self) -> None:
        if self._log_unsubscribe is not None:
            self._log_unsubscribe()
            self._log_unsubscribe = None

    def _thread_main(self, loop: asyncio.AbstractEventLoop) -> None:
        self._thread_id = threading.get_ident()
        asyncio.set_event_loop(loop)
        try:
            loop.run_forever()
        finally:
            try:
                tasks = [t for t in asyncio.all_tasks(loop) if not t.done()]
                for t in tasks:
                    t.cancel()
                if tasks:
                    loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
                loop.run_until_complete(loop.shutdown_asyncgens())
                loop.run_until_complete(
                    asyncio.wait_for(loop.shutdown_default_executor(), timeout=10.0)
                )
            except Exception as e:
                logger.warning("closing the session loop: %s", e)
            finally:
                loop.close()
                self._unhook_logs()
                fut = self._stop_future
                if fut is not None and not fut.done():
                    fut.set_result(None)

    def _begin_shutdown(self) -> None:
        self._spawn(self._shutdown(), "runtime.shutdown")

    async def _shutdown(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            task = self._start_task
            if task is not None and not task.done():
                task.cancel()
                await asyncio.wait({task})
            await self._close_session()
        except Exception:
            logger.exception("closing the session failed")
        finally:
            loop.stop()

    # --- commands ---------------------------------------------------------------------------
    def _failed(self, message: str, *, announced: bool = False) -> Future[Any]:
        fut: Future[Any] = Future()
        fut.set_exception(CommandError(message, announced=announced))
        return fut

    def _submit(
        self,
        what: str,
        fn: Callable[[], Coroutine[Any, Any, T]],
        *,
        needs_session: bool = True,
    ) -> Future[T]:
        loop = self._loop
        if loop is None:
            message = f"{what} failed: the session is not started"
            self._notice("error", message)
            return self._failed(message, announced=True)
        if self._stopping:
            return self._failed(f"{what} failed: the session runtime is stopping")
        try:
            return asyncio.run_coroutine_threadsafe(self._guard(what, fn, needs_session), loop)
        except RuntimeError:
            return self._failed(f"{what} failed: the session runtime has stopped")

    async def _guard(
        self, what: str, fn: Callable[[], Coroutine[Any, Any, T]], needs_session: bool
    ) -> T:
        try:
            if needs_session:
                await self._ready.wait()
                if self._start_error is not None:
                    raise CommandError(
                        f"the session did not start: {readable_error(self._start_error)}"
                    )
                self._check_ready()
            return await fn()
        except asyncio.CancelledError:
            raise
        except Exception as e:
            message = self.sanitizer.text(f"{what} failed: {readable_error(e)}")
            self._notice("error", message)  # every front end shows it: the one place it is said
            raise CommandError(message, announced=True) from e

    def _spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return task
