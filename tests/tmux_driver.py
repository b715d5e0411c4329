"""Drive a terminal program in a detached tmux session: start it at a given size, send keys,
read the screen (``capture-pane``), wait for text, kill it.

Each :class:`TmuxSession` uses its own tmux server (``-L`` socket, no user config), so tests do
not touch the user's tmux and can run in parallel::

    with TmuxSession(["voicetui", "--mode", "text"], width=120, height=40) as tmux:
        tmux.wait_for("Type to talk")
        tmux.type("hello")
        tmux.send_keys("Enter")
        tmux.wait_for("You said: hello", timeout=30)
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType


class TmuxError(RuntimeError):
    pass


def tmux_available() -> bool:
    return shutil.which("tmux") is not None


_NOT_INHERITED = ("COLUMNS", "LINES", "TMUX", "TMUX_PANE")


def _server_env() -> dict[str, str]:
    """The environment the tmux server (and so the program) starts with: ours, less what
    would lie about the pane — pytest sets ``COLUMNS=80``/``LINES=24``, which
    ``shutil.get_terminal_size`` (and so Textual) believes before the terminal itself — and
    less an enclosing tmux's variables."""
    return {k: v for k, v in os.environ.items() if k not in _NOT_INHERITED}


class TmuxSession:
    def __init__(
        self,
        command: str | Sequence[str],
        *,
        width: int = 120,
        height: int = 40,
        env: Mapping[str, str] | None = None,
        cwd: str | Path | None = None,
        term: str = "xterm-256color",
    ) -> None:
        self.command = command if isinstance(command, str) else shlex.join(command)
        self.width = width
        self.height = height
        self.env = dict(env or {})
        self.cwd = str(cwd) if cwd is not None else os.getcwd()
        self.term = term
        tag = uuid.uuid4().hex[:10]
        self.socket = f"voicetui-test-{tag}"
        self.name = f"t{tag}"
        self.started = False
        self._status_dir = Path(tempfile.mkdtemp(prefix="voicetui-tmux-"))
        self.status_file = self._status_dir / "exit-status"

    # --- plumbing ---------------------------------------------------------------------------
    def _tmux(self, *args: str, check: bool = True) -> str:
        proc = subprocess.run(
            ["tmux", "-L", self.socket, "-f", "/dev/null", *args],
            capture_output=True,
            text=True,
            timeout=15,
            env=_server_env(),
        )
        if check and proc.returncode != 0:
            raise TmuxError(f"tmux {' '.join(args)}: {proc.stderr.strip()}")
        return proc.stdout

    # --- lifecycle --------------------------------------------------------------------------
    def start(self) -> TmuxSession:
        if not tmux_available():
            raise TmuxError("tmux is not installed")
        env_args: list[str] = []
        for key, value in {"TERM": self.term, **self.env}.items():
            env_args += ["-e", f"{key}={value}"]
        # one tmux invocation: the options are set before the program starts, so a program
        # that exits at once still leaves its pane (and last screen) behind
        self._tmux(
            "start-server",
            ";",
            "set-option",
            "-g",
            "remain-on-exit",
            "on",
            ";",
            "set-option",
            "-g",
            "status",
            "off",
            ";",
            "new-session",
            "-d",
            "-s",
            self.name,
            "-x",
            str(self.width),
            "-y",
            str(self.height),
            "-c",
            self.cwd,
            *env_args,
            # the exit status, written by the shell (tmux does not always know it); the shell
            # survives a C-c sent to the program (a trap, unlike an ignore, is not inherited)
            f"trap : INT; {self.command}; echo $? > {shlex.quote(str(self.status_file))}",
        )
        self.started = True
        return self

    def kill(self) -> None:
        """Stop the program and the tmux server (idempotent)."""
        if self.started:
            self._tmux("kill-server", check=False)
            self.started = False
        shutil.rmtree(self._status_dir, ignore_errors=True)

    def __enter__(self) -> TmuxSession:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.kill()

    # --- input ------------------------------------------------------------------------------
    def send_keys(self, *keys: str) -> None:
        """tmux key names: ``Enter``, ``Escape``, ``F2``, ``C-c``, ``Up``... or plain text."""
        if keys:
            self._tmux("send-keys", "-t", self.name, *keys)

    def type(self, text: str) -> None:
        """Type ``text`` literally (no key-name lookup)."""
        self._tmux("send-keys", "-t", self.name, "-l", text)

    # --- output -----------------------------------------------------------------------------
    def capture(self, *, history: bool = False) -> str:
        """The visible screen as text, one line per row (``history``: the scrollback above it
        too, e.g. to find a traceback printed after a full-screen program left)."""
        extra = ("-S", "-") if history else ()
        return self._tmux("capture-pane", "-p", *extra, "-t", self.name)

    def wait_for(
        self,
        pattern: str | re.Pattern[str] | Callable[[str], bool],
        *,
        timeout: float = 10.0,
        interval: float = 0.1,
    ) -> str:
        """Poll the screen until ``pattern`` shows (a substring, a compiled regex, or a
        predicate on the screen's text); returns the screen. Raises ``TimeoutError`` with the
        last screen."""
        deadline = time.monotonic() + timeout
        screen = ""
        while True:
            screen = self.capture()
            if isinstance(pattern, re.Pattern):
                found = pattern.search(screen) is not None
            elif isinstance(pattern, str):
                found = pattern in screen
            else:
                found = pattern(screen)
            if found:
                return screen
            if time.monotonic() >= deadline:
                raise TimeoutError(f"{pattern!r} not on screen after {timeout:g}s:\n{screen}")
            time.sleep(interval)

    def pane_info(self) -> tuple[bool, int, int]:
        """``(dead, width, height)`` of the pane."""
        out = self._tmux(
            "display-message", "-p", "-t", self.name, "#{pane_dead} #{pane_width} #{pane_height}"
        ).split()
        return out[0] == "1", int(out[1]), int(out[2])

    def pane_flags(self, name: str) -> str:
        """A tmux pane format variable (``alternate_on``, ``mouse_any_flag``...)."""
        return self._tmux("display-message", "-p", "-t", self.name, f"#{{{name}}}").strip()

    def program_pid(self, timeout: float = 10.0) -> int:
        """The program's pid (a child of the pane's shell), e.g. to read its CPU time."""
        shell = int(self._tmux("display-message", "-p", "-t", self.name, "#{pane_pid}").strip())
        deadline = time.monotonic() + timeout
        while True:
            with contextlib.suppress(OSError):
                children = Path(f"/proc/{shell}/task/{shell}/children").read_text().split()
                if children:
                    return int(children[0])
            if time.monotonic() >= deadline:
                raise TmuxError(f"no program running in the pane after {timeout:g}s")
            time.sleep(0.05)

    def exit_status(self) -> int | None:
        """The program's exit status, None while it runs."""
        try:
            text = self.status_file.read_text().strip()
        except FileNotFoundError:
            return None
        return int(text) if text.lstrip("-").isdigit() else None

    def wait_for_exit(self, timeout: float = 10.0) -> int:
        """Wait until the program exits; returns its exit status."""
        deadline = time.monotonic() + timeout
        while True:
            status = self.exit_status()
            if status is not None:
                return status
            if time.monotonic() >= deadline:
                raise TimeoutError(f"still running after {timeout:g}s:\n{self.capture()}")
            time.sleep(0.05)
