"""For test_exit_clean: the TUI (on the fake runtime) while a soxr resampler sits in a
reference cycle, as the audio I/O's do; the app freezes the heap once the runtime started."""

from __future__ import annotations

import soxr

from tests.fake_runtime import EchoRuntime
from voicetui.tui.app import run_app


class _Holder:
    def __init__(self) -> None:
        self.me = self
        self.resampler = soxr.ResampleStream(48000, 16000, 1, dtype="float32")


if __name__ == "__main__":
    _Holder()  # garbage in a cycle: only the collector frees it
    runtime = EchoRuntime()
    try:
        raise SystemExit(run_app(runtime))
    finally:
        runtime.stop()
