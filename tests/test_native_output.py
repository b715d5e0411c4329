"""Native libraries' terminal output goes to a log file while the TUI runs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

CHILD = """
import os, sys
from pathlib import Path
from voicetui.runtime.native_output import native_output_to
with native_output_to(Path(sys.argv[1])):
    os.write(2, b"ALSA lib pcm.c: underrun occurred\\n")
    os.write(1, b"llama.cpp: loading model\\n")
    sys.__stderr__.write("drawn by the UI\\n")
    sys.__stderr__.flush()
print("after, on stdout")
os.write(2, b"after, native stderr\\n")
"""


def test_native_writes_go_to_the_log_and_python_streams_to_the_terminal(tmp_path: Path) -> None:
    log = tmp_path / "logs" / "native.log"
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, str(log)], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    assert "underrun occurred" in log.read_text() and "loading model" in log.read_text()
    assert "underrun" not in proc.stderr and "loading model" not in proc.stdout
    assert "drawn by the UI" in proc.stderr
    assert "after, on stdout" in proc.stdout and "after, native stderr" in proc.stderr
    assert oct(log.stat().st_mode & 0o777) == "0o600"
