"""The tmux driver on trivial commands, then the real TUI (on the fake runtime) in a real
terminal: keys (F-keys, typing, ctrl+q) go through tmux and the screen is read back."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

from tests.tmux_driver import TmuxSession, tmux_available

pytestmark = pytest.mark.skipif(not tmux_available(), reason="tmux is not installed")
ROOT = Path(__file__).resolve().parents[1]


def test_size_keys_capture_and_exit_status() -> None:
    with TmuxSession(["bash", "--norc", "--noprofile"], width=100, height=30) as tmux:
        tmux.wait_for("bash")
        assert tmux.pane_info() == (False, 100, 30)
        tmux.type("tput cols; tput lines; echo done-$((6*7))")
        tmux.send_keys("Enter")
        screen = tmux.wait_for("done-42")
        assert re.search(r"^100$", screen, re.M) and re.search(r"^30$", screen, re.M)
        tmux.type("exit 3")
        tmux.send_keys("Enter")
        assert tmux.wait_for_exit() == 3


def test_the_program_sees_the_pane_size(monkeypatch: pytest.MonkeyPatch) -> None:
    """Not the COLUMNS/LINES of the test's environment (pytest sets 80×24), which
    ``shutil.get_terminal_size`` — and so Textual — would believe first."""
    monkeypatch.setenv("COLUMNS", "80")
    monkeypatch.setenv("LINES", "24")
    code = "import shutil, time; print('size', *shutil.get_terminal_size()); time.sleep(5)"
    with TmuxSession([sys.executable, "-c", code], width=100, height=30) as tmux:
        tmux.wait_for("size 100 30", timeout=10)
        pid = tmux.program_pid()
        assert Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[1] == b"-c"


def test_wait_for_a_predicate() -> None:
    with TmuxSession(["cat"], width=40, height=10) as tmux:
        tmux.type("one two")
        screen = tmux.wait_for(lambda s: s.split()[:2] == ["one", "two"])
        assert "one two" in screen
        assert "one two" in tmux.capture(history=True)


def test_wait_for_times_out_with_the_screen() -> None:
    with TmuxSession(["cat"], width=40, height=10) as tmux:
        tmux.type("typed into cat")
        tmux.wait_for(re.compile(r"typed into \w+"))
        with pytest.raises(TimeoutError, match="typed into cat"):
            tmux.wait_for("never shown", timeout=0.3)
        tmux.send_keys("C-c")
        assert tmux.wait_for_exit() == 130  # SIGINT
    tmux.kill()  # idempotent


def test_the_tui_in_a_real_terminal() -> None:
    cmd = [sys.executable, "-m", "tests.fake_runtime"]
    with TmuxSession(cmd, width=100, height=30, cwd=ROOT) as tmux:
        tmux.wait_for("It's 3:42 PM in Paris.", timeout=30)
        tmux.type("hello tmux")
        tmux.send_keys("Enter")
        tmux.wait_for("You said: hello tmux", timeout=15)
        tmux.send_keys("F2")
        tmux.wait_for("muted", timeout=10)
        tmux.send_keys("C-q")
        assert tmux.wait_for_exit(timeout=15) == 0
