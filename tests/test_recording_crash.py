"""Crash safety: a recording process killed with SIGKILL at random moments leaves every file
readable; ``repair`` fixes headers a dying writer got wrong.

The kill tests run a real-time child process (tests/_recording_child.py); nothing asserted
depends on how fast the machine is: the audio that must be on disk is bounded by the events
that are (both go through the same writer thread, in order)."""

from __future__ import annotations

import asyncio
import io
import json
import os
import random
import select
import signal
import struct
import subprocess
import sys
import time
import wave
from pathlib import Path

import pytest

from tests.transcript_md import parse_transcript
from voicetui.recording import Recorder, load_recording, repair, repair_main
from voicetui.recording.repair import inspect_wav, read_wav

from .test_recording import FILES, RATE, Rig

ROOT = Path(__file__).resolve().parent.parent
CHILD = Path(__file__).resolve().parent / "_recording_child.py"
WAVS = (("audio.wav", 2), ("user.wav", 1), ("agent.wav", 1))


def start_child(root: Path) -> tuple[subprocess.Popen[bytes], Path]:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen(
        [sys.executable, str(CHILD), str(root)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        cwd=ROOT,
        env=env,
    )
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], 300)  # a slow start is not a failure
    if not ready:
        proc.kill()
        proc.wait()
        pytest.fail("the recording child did not start")
    line = proc.stdout.readline().decode().strip()
    assert line, "the child exited before recording"
    return proc, Path(line)


def check_readable(d: Path) -> None:
    """Every file parses as it is on disk (no repair)."""
    assert sorted(n for n in os.listdir(d) if not n.startswith(".")) == sorted(FILES)
    for name, ch in WAVS:
        with wave.open(str(d / name)) as w:
            assert (w.getnchannels(), w.getframerate(), w.getsampwidth()) == (ch, RATE, 2)
            n = w.getnframes()
            assert len(w.readframes(n)) == n * ch * 2  # the header never overcounts
    raw = (d / "events.jsonl").read_bytes()
    *complete, last = raw.split(b"\n")
    events = [json.loads(line) for line in complete]  # every complete line is valid
    assert events and events[0]["type"] == "recording_started"
    assert all({"t", "wall", "type", "event"} <= set(e) for e in events)
    if last:  # a torn last line is allowed, nothing else
        with pytest.raises(ValueError):
            json.loads(last)
    info = json.loads((d / "session.json").read_text())
    assert info["sample_rate"] == RATE
    parse_transcript((d / "transcript.md").read_bytes().decode("utf-8"))

    rec = load_recording(d)
    assert all("torn" in w for w in rec.warnings), rec.warnings
    last_t = max(e.t for e in rec.events)
    # at most ~1 s of audio lost (flush every 0.5 s, agent audio committed 0.25 s late); the
    # header may lag one more flush if the kill fell between the data and the header
    assert len(rec.audio) / RATE >= last_t - 2.0


def test_kill_9_at_random_moments_leaves_every_file_readable(tmp_path: Path) -> None:
    runs = 5
    for i in range(runs):
        rng = random.Random(7000 + i)
        proc, d = start_child(tmp_path)
        try:
            time.sleep(rng.uniform(0.0, 3.0))
        finally:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
        assert proc.returncode == -signal.SIGKILL
        check_readable(d)
        fixed = repair(d)
        for name, _ in WAVS:
            layout = inspect_wav(d / name)
            assert layout is not None and layout.consistent, (name, fixed)
        assert not repair(d)  # idempotent
        check_readable(d)
    assert len(os.listdir(tmp_path)) == runs


async def _record(root: Path) -> Path:
    rig = Rig(root)
    d = await rig.start()
    await asyncio.sleep(3)
    await rig.aclose()
    return d


@pytest.mark.looptime
async def test_repair_fixes_a_corrupted_header(tmp_path: Path) -> None:
    corrupt_and_repair(await _record(tmp_path), tmp_path)


def corrupt_and_repair(d: Path, tmp_path: Path) -> None:
    good, _ = read_wav(d / "audio.wav")
    with open(d / "audio.wav", "r+b") as f:  # a writer died mid-update
        f.seek(4)
        f.write(struct.pack("<I", 12345))
        f.seek(40)
        f.write(struct.pack("<I", 0x7FFFFFF0))
    with open(d / "user.wav", "r+b") as f:  # undercounting: the last flush is not in it
        f.seek(40)
        f.write(struct.pack("<I", 4800))
    with open(d / "agent.wav", "r+b") as f:  # the header is garbage
        f.write(b"\0" * 44)
    with open(d / "events.jsonl", "ab") as f:  # a torn line
        f.write(b'{"t": 3.1, "wall": 1, "ty')
    (d / ".session.json.tmp").write_text('{"torn')
    assert load_recording(d).warnings  # readable anyway, with warnings
    out = io.StringIO()
    assert repair_main(d, out=out) == 0
    report = out.getvalue()
    assert "audio.wav: fixed the header" in report and "user.wav: fixed the header" in report
    assert "agent.wav: rewrote the header" in report and "torn last line" in report
    assert "session.json.tmp" in report and not (d / ".session.json.tmp").exists()
    for name, ch in WAVS:
        size = os.path.getsize(d / name)
        with wave.open(str(d / name)) as w:
            assert w.getnchannels() == ch and w.getframerate() == RATE
            assert w.getnframes() == (size - 44) // (2 * ch) == len(good)
    rec = load_recording(d)
    assert rec.warnings == []
    assert (rec.audio == good).all()
    out = io.StringIO()
    assert repair_main(d, out=out) == 0 and "nothing to repair" in out.getvalue()
    assert repair_main(tmp_path / "missing", out=io.StringIO()) == 1


@pytest.mark.looptime
async def test_headers_are_valid_during_the_recording(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    d = await rig.start()
    rec: Recorder = rig.rec
    seen = []
    for _ in range(6):
        await asyncio.sleep(1.0)
        assert await rec.drain(flush=False)  # the writer handled what was queued: no flush
        with wave.open(str(d / "audio.wav")) as w:
            seen.append(w.getnframes() / RATE)
    await rig.aclose()
    assert rec.error is None
    # flushed every 0.5 s of recording (ticks every 0.25 s): each look sees all but the last
    # 0.75 s at most
    for i, s in enumerate(seen, 1):
        assert i - 0.75 <= s <= i + 0.01
