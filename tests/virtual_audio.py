"""Virtual audio devices for tests (PulseAudio null sinks via scripts/virtual_audio.sh).

    from tests.virtual_audio import VirtualAudio, virtual_audio_fixture  # noqa: F401

    async def test_x(virtual_audio: VirtualAudio) -> None:
        await virtual_audio.play_into_mic(wav_path)           # what the mic hears
        async with virtual_audio.record_speaker() as rec:     # what the speaker plays
            ...
        rec.samples  # int16 mono at 48 kHz

One private PulseAudio daemon per pytest run (its own runtime dir, so concurrent test runs do
not hear each other), started once and stopped at the end. Skips when PulseAudio is not
installed, unless ``CI`` is set: there it must run.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "virtual_audio.sh"
RATE = 48000


class Recording:
    """What ``parec`` captured from a monitor source (int16 mono, 48 kHz)."""

    def __init__(self) -> None:
        self._chunks: list[bytes] = []

    @property
    def samples(self) -> np.ndarray:
        return np.frombuffer(b"".join(self._chunks), dtype=np.int16)

    def loud(self, threshold: int = 500) -> np.ndarray:
        """Indices of the samples louder than ``threshold``."""
        return np.flatnonzero(np.abs(self.samples.astype(np.int32)) > threshold)

    def loud_span(self, threshold: int = 500) -> float:
        """Seconds from the first to the last loud sample (0 if none)."""
        idx = self.loud(threshold)
        return float(idx[-1] - idx[0] + 1) / RATE if idx.size else 0.0

    def loud_duration(self, threshold: int = 500, window: float = 0.01) -> float:
        """Seconds of audio in ``window``-long pieces that hold a loud sample: what was played,
        without the gaps a starved machine may insert (an underrun stretches the span, not
        this)."""
        n = max(1, round(RATE * window))
        idx = self.loud(threshold)
        return float(np.unique(idx // n).size * n) / RATE if idx.size else 0.0


class VirtualAudio:
    def __init__(self, runtime_dir: Path) -> None:
        self.dir = runtime_dir
        self.env = {
            **os.environ,
            "VIRTUAL_AUDIO_DIR": str(runtime_dir),
            "XDG_RUNTIME_DIR": str(runtime_dir),
            "PULSE_SERVER": f"unix:{runtime_dir}/pulse/native",
        }

    def script(self, *args: str) -> str:
        out = subprocess.run(
            [str(SCRIPT), *args], env=self.env, capture_output=True, text=True, timeout=60
        )
        if out.returncode != 0:
            raise RuntimeError(f"virtual_audio.sh {' '.join(args)} failed: {out.stderr}")
        return out.stdout

    def pactl(self, *args: str) -> str:
        out = subprocess.run(
            ["pactl", *args], env=self.env, capture_output=True, text=True, timeout=30
        )
        if out.returncode != 0:
            raise RuntimeError(f"pactl {' '.join(args)} failed: {out.stderr}")
        return out.stdout

    def unplug(self) -> None:
        """Remove every virtual device: streams on them fail."""
        self.script("unplug")

    def plug(self) -> None:
        self.script("plug")

    def loopback(self, latency_ms: int = 30) -> str:
        """Route the speaker into the mic (an echo); returns the module id to unload."""
        return self.pactl(
            "load-module",
            "module-loopback",
            "source=vspeaker.monitor",
            "sink=vmic_sink",
            f"latency_msec={latency_ms}",
            "adjust_time=0",  # a fixed echo path: no rate/latency re-adjustments
            "source_dont_move=true",
            "sink_dont_move=true",
        ).strip()

    def play_into_mic_sync(self, wav: str | Path) -> None:
        """:meth:`play_into_mic` for tests that drive a separate process (no event loop)."""
        subprocess.run(
            ["paplay", "--device=vmic_sink", "--latency-msec=20", str(wav)],
            env=self.env,
            check=True,
            timeout=60,
        )

    @contextlib.contextmanager
    def record_speaker_sync(self, raw_path: str | Path) -> Iterator[Recording]:
        """:meth:`record_speaker` for tests without an event loop: ``parec`` writes straight
        into ``raw_path`` (nothing to drain while the test blocks); the :class:`Recording` is
        filled when the block ends."""
        rec = Recording()
        with open(raw_path, "wb") as out:
            proc = subprocess.Popen(
                [
                    "parec",
                    "--device=vspeaker.monitor",
                    "--latency-msec=20",
                    "--format=s16le",
                    f"--rate={RATE}",
                    "--channels=1",
                    "--raw",
                ],
                env=self.env,
                stdout=out,
            )
            try:
                time.sleep(0.3)  # parec is connected and recording
                yield rec
                time.sleep(0.2)  # the tail of what was played
            finally:
                proc.terminate()
                proc.wait(timeout=10)
        rec._chunks.append(Path(raw_path).read_bytes())

    async def play_into_mic(self, wav: str | Path) -> None:
        """Play a WAV file into the virtual mic and wait until it has played."""
        proc = await asyncio.create_subprocess_exec(
            "paplay", "--device=vmic_sink", "--latency-msec=20", str(wav), env=self.env
        )
        rc = await proc.wait()
        assert rc == 0, f"paplay exited with {rc}"

    @contextlib.asynccontextmanager
    async def record_speaker(self) -> AsyncIterator[Recording]:
        """Record what the virtual speaker plays while the block runs."""
        rec = Recording()
        proc = await asyncio.create_subprocess_exec(
            "parec",
            "--device=vspeaker.monitor",
            "--latency-msec=20",
            "--format=s16le",
            f"--rate={RATE}",
            "--channels=1",
            "--raw",
            env=self.env,
            stdout=asyncio.subprocess.PIPE,
        )
        assert proc.stdout is not None
        stdout = proc.stdout

        async def read() -> None:
            while chunk := await stdout.read(4096):
                rec._chunks.append(chunk)

        reader = asyncio.create_task(read())
        await asyncio.sleep(0.3)  # parec is connected and recording
        try:
            yield rec
            await asyncio.sleep(0.2)  # the tail of what was played
        finally:
            proc.terminate()
            await proc.wait()
            with contextlib.suppress(asyncio.CancelledError):
                await reader


def _refresh_portaudio() -> None:
    from voicetui.io.local import refresh_devices

    refresh_devices()


_shared: list[VirtualAudio] = []  # the running instance, shared by every test module
_users = 0


@pytest.fixture(scope="session", name="virtual_audio")
def virtual_audio_fixture() -> Iterator[VirtualAudio]:
    """Import it into a test module (``from tests.virtual_audio import virtual_audio_fixture``)
    and ask for ``virtual_audio``."""
    global _users
    missing = [
        t for t in ("pulseaudio", "pactl", "pacat", "paplay", "parec") if not shutil.which(t)
    ]
    if missing:
        if os.environ.get("CI"):
            pytest.fail(f"CI needs PulseAudio for the audio tests; missing: {missing}")
        pytest.skip(f"PulseAudio is not installed (missing {', '.join(missing)})")
    if not _shared:
        _shared.append(_start())
    _users += 1
    try:
        yield _shared[0]
    finally:
        _users -= 1
        if _users == 0:
            _stop(_shared.pop())


_saved_env: dict[str, str | None] = {}


def _start() -> VirtualAudio:
    va = VirtualAudio(Path(tempfile.mkdtemp(prefix="voicetui-audio-")))
    try:
        va.script("start")
    except BaseException:
        _stop(va)
        raise
    for key in ("XDG_RUNTIME_DIR", "PULSE_SERVER"):
        _saved_env[key] = os.environ.get(key)
        os.environ[key] = va.env[key]
    _refresh_portaudio()  # PortAudio lists devices at init: re-read them with this env
    return va


def _stop(va: VirtualAudio) -> None:
    with contextlib.suppress(RuntimeError, subprocess.SubprocessError):
        va.script("stop")
    for key, value in _saved_env.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    _saved_env.clear()
    shutil.rmtree(va.dir, ignore_errors=True)


async def until(predicate: Callable[[], bool], step: float = 0.01) -> None:
    """Poll ``predicate`` (for state set from callbacks; bound it with ``asyncio.timeout``)."""
    while not predicate():  # noqa: ASYNC110
        await asyncio.sleep(step)
