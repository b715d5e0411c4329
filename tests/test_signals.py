"""SIGTERM and SIGHUP close voicetui like Ctrl-C: the recording is finalised (``stopped_at``,
"Recording stopped"), the TUI quits through its own exit (terminal restored), exit 128 + signal."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests import fake_runtime as fr
from tests.fake_runtime import FakeRuntime, settle
from tests.tmux_driver import TmuxSession, tmux_available
from voicetui.signals import Terminated, exit_code, signals_as_interrupt
from voicetui.tui.app import VoiceTUIApp

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
def test_headless_closes_gracefully_on_a_signal(tmp_path: Path, sig: signal.Signals) -> None:
    env = {
        **os.environ,
        "VOICETUI_CONFIG": str(tmp_path / "none.toml"),
        "PYTHONPATH": str(ROOT),
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "voicetui", "--headless", "--mode", "text",
         "--stt", "none", "--llm", "none", "--tts", "none", "--vad", "none",
         "--record", str(tmp_path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=ROOT,
    )  # fmt: skip
    assert proc.stderr is not None
    try:
        while "voicetui: mode TEXT" not in (line := proc.stderr.readline()):
            assert line, "the runtime did not start"
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 128 + sig, err
    assert "Traceback" not in err
    (rec,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    info = json.loads((rec / "session.json").read_text())
    assert info["stopped_at"] is not None
    assert "**Recording stopped**" in (rec / "transcript.md").read_text()


def test_signals_as_interrupt_raises_terminated_and_restores() -> None:
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(Terminated) as caught, signals_as_interrupt():
        os.kill(os.getpid(), signal.SIGHUP)
        signal.sigtimedwait([], 0.1)  # (a bytecode boundary for the handler)
    assert exit_code(caught.value) == 129 and exit_code(KeyboardInterrupt()) == 130
    assert signal.getsignal(signal.SIGTERM) is before


async def test_the_tui_quits_through_its_exit_on_sigterm() -> None:
    app = VoiceTUIApp(FakeRuntime(), clock=lambda: fr.T0, bridge_interval=0)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        os.kill(os.getpid(), signal.SIGTERM)
        for _ in range(50):
            await pilot.pause(0.02)
            if app.return_code is not None:
                break
    assert app.return_code == 143
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL  # handlers removed on unmount


@pytest.mark.skipif(not tmux_available(), reason="tmux is not installed")
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
def test_the_tui_in_a_terminal_restores_it_on_a_signal(tmp_path: Path, sig: signal.Signals) -> None:
    env = {"PYTHONPATH": str(ROOT), "VOICETUI_CONFIG": str(tmp_path / "none.toml")}
    cmd = [sys.executable, "-m", "voicetui", "--mode", "text", "--stt", "none", "--llm", "none",
           "--tts", "none", "--vad", "none", "--record", str(tmp_path)]  # fmt: skip
    with TmuxSession(cmd, width=100, height=30, env=env, cwd=ROOT) as tmux:
        tmux.wait_for("Type to talk", timeout=60)
        assert tmux.pane_flags("alternate_on") == "1"  # the app's screen
        os.kill(tmux.program_pid(), sig)
        assert tmux.wait_for_exit(timeout=60) == 128 + sig
        assert tmux.pane_flags("alternate_on") == "0"  # the terminal is back to the shell's
        assert tmux.pane_flags("mouse_any_flag") == "0"
        assert "Traceback" not in tmux.capture(history=True)
    (rec,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    assert json.loads((rec / "session.json").read_text())["stopped_at"] is not None
    assert "**Recording stopped**" in (rec / "transcript.md").read_text()
