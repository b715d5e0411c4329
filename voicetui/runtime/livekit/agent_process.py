"""The user's LiveKit agent as a child process: ``PYTHON -m livekit.agents console FILE
--connect-addr HOST:PORT``, its output as log lines, its exit, and stopping it.

It runs in its own process group (session): LiveKit's console kills its whole group on a second
signal, which must not be voicetui's, and stopping the group ends any worker it started."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import signal
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path

logger = logging.getLogger("voicetui.livekit")

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")  # LiveKit's dev logging is coloured
TAIL_LINES = 12  # the agent's last lines, to say why it exited
STOP_GRACE = 5.0  # seconds between SIGTERM (LiveKit's graceful shutdown) and SIGKILL
_LEVELS = re.compile(r"\b(DEBUG|INFO|WARNING|WARN|ERROR|CRITICAL)\b")
_LEVEL_NUMBERS = {"WARN": logging.WARNING} | {
    name: logging.getLevelName(name) for name in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
}


def line_level(text: str) -> int:
    """The log level a LiveKit log line names (INFO when it names none)."""
    found = _LEVELS.search(text[:80])
    return _LEVEL_NUMBERS[found.group(1)] if found else logging.INFO


def agent_command(
    python: str,
    agent_file: Path,
    connect_addr: str,
    extra_args: Sequence[str] = (),
    *,
    launcher: Sequence[str] | None = None,
) -> list[str]:
    """``launcher``: what runs instead of ``PYTHON -m livekit.agents`` (tests)."""
    return [
        *(launcher or (python, "-m", "livekit.agents")),
        "console",
        str(agent_file),
        "--connect-addr",
        connect_addr,
        *extra_args,
    ]


class AgentProcess:
    """One run of the agent. ``on_line(stream, text)`` gets each output line (on the loop)."""

    def __init__(
        self,
        argv: Sequence[str],
        *,
        on_line: Callable[[str, str], None],
        cwd: Path | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        self.argv = list(argv)
        self._on_line = on_line
        self._cwd = cwd
        self._env = env
        self._proc: asyncio.subprocess.Process | None = None
        self._readers: list[asyncio.Task[None]] = []
        self.tail: deque[str] = deque(maxlen=TAIL_LINES)
        self.stopping = False

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def returncode(self) -> int | None:
        return self._proc.returncode if self._proc is not None else None

    async def start(self) -> None:
        env = dict(os.environ if self._env is None else self._env)
        env["PYTHONUNBUFFERED"] = "1"  # lines as they happen, not at exit
        env.setdefault("NO_COLOR", "1")
        self._proc = await asyncio.create_subprocess_exec(
            *self.argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            cwd=self._cwd,
            env=env,
            start_new_session=True,
        )
        assert self._proc.stdout is not None and self._proc.stderr is not None
        self._readers = [
            asyncio.create_task(self._read("stdout", self._proc.stdout), name="lk-agent.stdout"),
            asyncio.create_task(self._read("stderr", self._proc.stderr), name="lk-agent.stderr"),
        ]

    async def _read(self, stream: str, reader: asyncio.StreamReader) -> None:
        while True:
            try:
                raw = await reader.readline()
            except ValueError:  # a line beyond the limit: take what is there
                raw = await reader.read(64 * 1024)
            if not raw:
                return
            text = ANSI.sub("", raw.decode("utf-8", "replace")).rstrip()
            if text:
                self.tail.append(text)
                self._on_line(stream, text)

    async def wait(self) -> int:
        """The exit code, once the process has exited and its output is read."""
        assert self._proc is not None
        code = await self._proc.wait()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(asyncio.gather(*self._readers, return_exceptions=True), 2.0)
        return code

    def _signal_group(self, sig: int) -> None:
        if self._proc is None or self._proc.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self._proc.pid, sig)

    async def stop(self, grace: float = STOP_GRACE) -> None:
        """SIGTERM to the agent's group, SIGKILL after ``grace`` seconds; waits for the exit."""
        self.stopping = True
        proc = self._proc
        if proc is None:
            return
        if proc.returncode is None:
            self._signal_group(signal.SIGTERM)
            try:
                await asyncio.wait_for(asyncio.shield(proc.wait()), grace)
            except TimeoutError:
                logger.warning("the LiveKit agent did not stop in %.0f s: killing it", grace)
                self._signal_group(signal.SIGKILL)
                await proc.wait()
        # its group may still hold workers: they go with it
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        for task in self._readers:
            task.cancel()
        await asyncio.gather(*self._readers, return_exceptions=True)
