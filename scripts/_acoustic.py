"""``bench_offline.py --acoustic``: the spoken turn measured at the devices, not from the app.

A private PulseAudio daemon (``scripts/virtual_audio.sh``: a null sink ``vmic_sink`` whose
monitor is the virtual microphone ``vmic``, and a null sink ``vspeaker``) carries the audio. The
sessions hear the microphone through ``LocalAudioInput`` and speak through ``LocalAudioOutput``
(PortAudio, as the app in local mode; no echo cancellation, noise suppression or gain control:
there is no echo on these devices, and the scripted bench has none either). ``paplay`` plays
each question into ``vmic_sink``; two ``parec`` processes record ``vmic_sink.monitor`` (what the
microphone is given) and ``vspeaker.monitor`` (what the speaker plays).

Both recordings are placed on the loop's clock (``time.monotonic``): a thread reads each
``parec`` and notes when every chunk arrived; a chunk's samples were captured no later than it
arrived, so the clock offset of a recording is the smallest ``arrival - samples / rate`` over
its chunks (the chunks that came without delay; both recorders are set up alike, so their
remaining delay is the same). The acoustic latency of a turn is the time from the last voiced
sample of the question in the microphone's recording to the first voiced sample of the reply in
the speaker's ("voiced": louder than 1 % of full scale, the level the questions are trimmed at).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import subprocess
import tempfile
import threading
import time
import wave
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
from livekit import rtc

from voicetui.agents.voice.io import AudioInput
from voicetui.io.local import LocalAudioEvents, LocalAudioInput, LocalAudioOutput, refresh_devices

SCRIPT = Path(__file__).resolve().parent / "virtual_audio.sh"
RATE = 48000
VOICED = 0.01 * 32768  # the level the questions are trimmed at
TOOLS = ("pulseaudio", "pactl", "pacat", "paplay", "parec")


class MonitorRecording:
    """``parec`` of one monitor source, read by a thread that dates every chunk."""

    def __init__(self, source: str, env: dict[str, str]) -> None:
        self._proc = subprocess.Popen(
            [
                "parec",
                f"--device={source}",
                "--latency-msec=10",
                "--format=s16le",
                f"--rate={RATE}",
                "--channels=1",
                "--raw",
            ],
            env=env,
            stdout=subprocess.PIPE,
        )
        self._chunks: list[bytes] = []
        self._arrivals: list[tuple[float, int]] = []  # (monotonic time, samples so far)
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._read, name=f"parec-{source}", daemon=True)
        self._thread.start()

    def _read(self) -> None:
        assert self._proc.stdout is not None
        fd, total, odd = self._proc.stdout.fileno(), 0, b""
        while chunk := os.read(fd, 1 << 16):
            at = time.monotonic()
            chunk, odd = odd + chunk, b""
            if len(chunk) % 2:
                chunk, odd = chunk[:-1], chunk[-1:]
            total += len(chunk) // 2
            with self._lock:
                self._chunks.append(chunk)
                self._arrivals.append((at, total))

    def close(self) -> None:
        self._proc.terminate()
        self._proc.wait(timeout=10)
        self._thread.join(timeout=5)

    def between(self, start: float, end: float) -> tuple[np.ndarray, float]:
        """The samples recorded from ``start`` to ``end`` (monotonic time) and the time of the
        first one."""
        with self._lock:
            arrivals = list(self._arrivals)
            pcm = np.frombuffer(b"".join(self._chunks), dtype=np.int16)
        near = [t - n / RATE for t, n in arrivals if start - 5.0 <= t <= end + 1.0]
        if not near:
            return np.zeros(0, np.int16), start
        offset = min(near)  # when sample 0 was captured
        first = max(0, int((start - offset) * RATE))
        last = min(len(pcm), int((end - offset) * RATE))
        return pcm[first:last], offset + first / RATE


def last_voiced(rec: MonitorRecording, start: float, end: float) -> float | None:
    """Monotonic time just after the last voiced sample between ``start`` and ``end``."""
    pcm, t0 = rec.between(start, end)
    idx = np.flatnonzero(np.abs(pcm.astype(np.int32)) > VOICED)
    return t0 + (int(idx[-1]) + 1) / RATE if idx.size else None


def first_voiced(rec: MonitorRecording, start: float, end: float) -> float | None:
    """Monotonic time of the first voiced sample between ``start`` and ``end``."""
    pcm, t0 = rec.between(start, end)
    idx = np.flatnonzero(np.abs(pcm.astype(np.int32)) > VOICED)
    return t0 + int(idx[0]) / RATE if idx.size else None


class GatedMic(AudioInput):
    """One session's view of the shared microphone: frames arrive only while it is routed."""

    def __init__(self) -> None:
        super().__init__(label="GatedMic")
        self.queue: asyncio.Queue[rtc.AudioFrame] = asyncio.Queue()

    def __aiter__(self) -> AsyncIterator[rtc.AudioFrame]:
        return self._frames()

    async def _frames(self) -> AsyncIterator[rtc.AudioFrame]:
        while True:
            yield await self.queue.get()


class VirtualRoom:
    """The devices, the recorders and the routing of the one microphone to one session at a
    time (the configurations take turns)."""

    def __init__(self) -> None:
        missing = [t for t in TOOLS if shutil.which(t) is None]
        if missing:
            raise SystemExit(f"--acoustic needs PulseAudio ({', '.join(missing)} missing)")
        self.dir = Path(tempfile.mkdtemp(prefix="voicetui-bench-audio-"))
        self.env = {
            **os.environ,
            "VIRTUAL_AUDIO_DIR": str(self.dir),
            "XDG_RUNTIME_DIR": str(self.dir),
            "PULSE_SERVER": f"unix:{self.dir}/pulse/native",
        }
        self._saved = {k: os.environ.get(k) for k in ("XDG_RUNTIME_DIR", "PULSE_SERVER")}
        self._started = False
        self.mic_rec: MonitorRecording | None = None
        self.speaker_rec: MonitorRecording | None = None
        self._input: LocalAudioInput | None = None
        self._outputs: list[LocalAudioOutput] = []
        self._pump: asyncio.Task[None] | None = None
        self.routed: GatedMic | None = None

    async def start(self) -> None:
        await self._script("start")
        self._started = True
        for key in self._saved:
            os.environ[key] = self.env[key]
        refresh_devices()  # PortAudio lists the devices at init: re-read them with this env
        self.mic_rec = MonitorRecording("vmic_sink.monitor", self.env)
        self.speaker_rec = MonitorRecording("vspeaker.monitor", self.env)
        self._input = LocalAudioInput(sample_rate=16000, events=LocalAudioEvents())
        self._input.start()
        async with asyncio.timeout(10):
            await self._input.wait_open()
        self._pump = asyncio.create_task(self._route(self._input), name="VirtualRoom.mic")

    async def _route(self, mic: LocalAudioInput) -> None:
        async for frame in mic:
            if self.routed is not None:
                self.routed.queue.put_nowait(frame)

    async def _script(self, command: str) -> None:
        proc = await asyncio.create_subprocess_exec(
            str(SCRIPT),
            command,
            env=self.env,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        _, err = await proc.communicate()
        if proc.returncode != 0:
            raise RuntimeError(f"virtual_audio.sh {command} failed: {err.decode()}")

    def output(self) -> LocalAudioOutput:
        """A speaker for one session (PulseAudio mixes them; one speaks at a time)."""
        out = LocalAudioOutput(sample_rate=24000, events=LocalAudioEvents())
        self._outputs.append(out)
        return out

    async def play(self, pcm: np.ndarray, rate: int) -> None:
        """Play a question into the microphone; returns once it has played."""
        with tempfile.NamedTemporaryFile(suffix=".wav", dir=self.dir, delete=False) as f:
            path = Path(f.name)
        with wave.open(str(path), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(rate)
            w.writeframes(pcm.astype(np.int16).tobytes())
        proc = await asyncio.create_subprocess_exec(
            "paplay", "--device=vmic_sink", "--latency-msec=20", str(path), env=self.env
        )
        if await proc.wait() != 0:
            raise RuntimeError("paplay failed")

    async def aclose(self) -> None:
        if self._pump is not None:
            self._pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pump
        if self._input is not None:
            await self._input.aclose()
        for out in self._outputs:
            await out.aclose()
        for rec in (self.mic_rec, self.speaker_rec):
            if rec is not None:
                rec.close()
        if self._started:
            await self._script("stop")
        for key, value in self._saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        shutil.rmtree(self.dir, ignore_errors=True)
