"""The TUI ends without native leak reports: the heap it froze for faster collections is
unfrozen on exit (nanobind reported soxr resamplers left in cycles as "leaked instances")."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.tmux_driver import TmuxSession, tmux_available

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(not tmux_available(), reason="tmux is not installed")
def test_no_leak_report_after_the_tui() -> None:
    """(Textual draws on stderr: what is printed at exit stays on the pane.)"""
    cmd = [sys.executable, "-m", "tests._soxr_cycle_app"]
    with TmuxSession(cmd, width=100, height=30, cwd=ROOT) as tmux:
        tmux.wait_for("It's 3:42 PM in Paris.", timeout=30)
        tmux.send_keys("C-q")
        assert tmux.wait_for_exit(timeout=30) == 0
        assert "nanobind" not in tmux.capture(history=True)
