"""Keeping C libraries off the terminal while the TUI owns it.

PortAudio/ALSA ("underrun occurred"), llama.cpp and onnxruntime write straight to file
descriptors 1 and 2, which would garble Textual's screen. :func:`native_output_to` points fds 1
and 2 at a log file and gives Python's ``sys.__stderr__``/``sys.__stdout__`` (which Textual
draws on) new descriptors still connected to the terminal.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def native_output_to(path: Path) -> Iterator[Path]:
    """Within the block, bytes written to fds 1/2 by native code go to ``path``; Python's
    stdout/stderr objects (and so Textual) still reach the terminal."""
    path.parent.mkdir(parents=True, exist_ok=True)
    saved_streams = (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__)
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    term_out, term_err = os.dup(1), os.dup(2)
    log_fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.dup2(log_fd, 1)
    os.dup2(log_fd, 2)
    os.close(log_fd)
    new_out = _text_stream(term_out)
    new_err = _text_stream(term_err)
    sys.stdout, sys.stderr = new_out, new_err
    # Textual draws on sys.__stderr__: point it at the terminal's new descriptor
    setattr(sys, "__stdout__", new_out)  # noqa: B010 (typeshed marks these Final)
    setattr(sys, "__stderr__", new_err)  # noqa: B010
    try:
        yield path
    finally:
        for stream in (new_out, new_err):
            with contextlib.suppress(Exception):
                stream.flush()
        os.dup2(term_out, 1)
        os.dup2(term_err, 2)
        sys.stdout, sys.stderr = saved_streams[0], saved_streams[1]
        setattr(sys, "__stdout__", saved_streams[2])  # noqa: B010
        setattr(sys, "__stderr__", saved_streams[3])  # noqa: B010
        for stream in (new_out, new_err):
            with contextlib.suppress(Exception):
                stream.close()


def _text_stream(fd: int) -> io.TextIOWrapper:
    raw = io.FileIO(fd, "w", closefd=True)
    return io.TextIOWrapper(
        io.BufferedWriter(raw), encoding="utf-8", errors="replace", line_buffering=True
    )
