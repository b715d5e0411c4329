"""A crafted recording folder: links, FIFOs, devices and deeply nested JSON make ``repair``,
``show`` and ``load_recording`` refuse with a readable "not a recording file", never write
through a link, hang or raise a traceback."""

from __future__ import annotations

import io
import json
import os
import struct
import threading
import wave
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from voicetui.recording import load_recording, repair_main
from voicetui.recording.files import NotARecordingFile, read_bytes
from voicetui.recording.wav_writer import wav_header
from voicetui.runtime.recording_view import RecordingRuntime

RATE = 16000
VICTIM = b"my notes: do not touch\nsecond line, no newline at the end"


def make_recording(d: Path) -> Path:
    """A recording a crash left behind: WAV headers that undercount, a torn last event."""
    d.mkdir()
    for name, ch in (("audio.wav", 2), ("user.wav", 1), ("agent.wav", 1)):
        pcm = b"\1\0" * ch * 1600
        (d / name).write_bytes(wav_header(sample_rate=RATE, channels=ch, data_bytes=0) + pcm)
    (d / "session.json").write_text(json.dumps({"sample_rate": RATE}))
    line = {"t": 0.5, "wall": 1.0, "type": "notice", "event": {"level": "info", "message": "x"}}
    (d / "events.jsonl").write_text(json.dumps(line) + "\n" + '{"t": 1, "ty')
    (d / "transcript.md").write_text("# voicetui recording\n")
    return d


def victim(tmp_path: Path) -> Path:
    p = tmp_path / "notes.txt"
    p.write_bytes(VICTIM)
    return p


def finishes(fn: Callable[[], Any], timeout: float = 20.0) -> Any:
    """``fn()`` in a thread: a read that hangs (a FIFO) fails the test instead of hanging it."""
    result: list[Any] = []
    error: list[BaseException] = []

    def run() -> None:
        try:
            result.append(fn())
        except BaseException as e:
            error.append(e)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(timeout)
    assert not t.is_alive(), "hung"
    if error:
        raise error[0]
    return result[0]


@pytest.mark.parametrize("name", ["user.wav", "audio.wav", "events.jsonl", "session.json"])
def test_repair_never_writes_through_a_link(tmp_path: Path, name: str) -> None:
    d = make_recording(tmp_path / "rec")
    target = victim(tmp_path)
    (d / name).unlink()
    (d / name).symlink_to(target)
    before = {p.name: p.read_bytes() for p in d.iterdir() if not p.is_symlink()}
    out = io.StringIO()
    assert repair_main(d, out=out) == 1
    assert target.read_bytes() == VICTIM
    assert f"{name}: not a recording file (a symbolic link" in out.getvalue()
    # refused before anything was changed
    assert {p.name: p.read_bytes() for p in d.iterdir() if not p.is_symlink()} == before


def test_repair_still_repairs_a_regular_recording(tmp_path: Path) -> None:
    d = make_recording(tmp_path / "rec")
    out = io.StringIO()
    assert repair_main(d, out=out) == 0
    assert "user.wav: fixed the header" in out.getvalue()
    assert "torn last line" in out.getvalue()


def test_a_fifo_is_refused_at_once(tmp_path: Path) -> None:
    d = make_recording(tmp_path / "rec")
    (d / "events.jsonl").unlink()
    os.mkfifo(d / "events.jsonl")
    with pytest.raises(NotARecordingFile, match=r"events.jsonl: not a recording file \(a FIFO\)"):
        finishes(lambda: load_recording(d))
    out = io.StringIO()
    assert finishes(lambda: repair_main(d, out=out)) == 1
    assert "a FIFO" in out.getvalue()
    os.unlink(d / "user.wav")
    os.mkfifo(d / "user.wav")
    (d / "events.jsonl").unlink()
    (d / "events.jsonl").write_text("")
    rec = finishes(lambda: load_recording(d))
    assert any("user.wav: not a recording file (a FIFO)" in w for w in rec.warnings)


def test_a_link_to_a_device_is_refused(tmp_path: Path) -> None:
    d = make_recording(tmp_path / "rec")
    (d / "events.jsonl").unlink()
    (d / "events.jsonl").symlink_to("/dev/zero")
    with pytest.raises(NotARecordingFile, match="symbolic link"):
        finishes(lambda: load_recording(d))
    with pytest.raises(NotARecordingFile, match="a device"):
        read_bytes("/dev/zero", limit=1024)


def test_reads_are_bounded(tmp_path: Path) -> None:
    big = tmp_path / "big"
    big.write_bytes(b"x" * 5000)
    with pytest.raises(NotARecordingFile, match="larger than"):
        read_bytes(big, limit=4096)


def test_deeply_nested_json_is_a_warning_not_a_traceback(tmp_path: Path) -> None:
    d = make_recording(tmp_path / "rec")
    deep = "[" * 100_000 + "]" * 100_000
    (d / "session.json").write_text(deep)
    with (d / "events.jsonl").open("a") as f:
        f.write('\n{"t": 2, "wall": 1, "type": "x", "event": ' + deep + "}\n")
    rec = load_recording(d)
    assert any("session.json" in w and "nested too deeply" in w for w in rec.warnings)
    assert any("line 3" in w and "nested too deeply" in w for w in rec.warnings)
    view = RecordingRuntime(d)
    notices: list[Any] = []
    view.subscribe(notices.append)
    view.start().result(timeout=30)
    assert any("nested too deeply" in str(getattr(n, "message", "")) for n in notices)


def test_show_of_a_fifo_says_why(tmp_path: Path) -> None:
    d = make_recording(tmp_path / "rec")
    (d / "events.jsonl").unlink()
    os.mkfifo(d / "events.jsonl")
    view = RecordingRuntime(d)
    started = view.start()
    with pytest.raises(RuntimeError, match=r"not a recording file \(a FIFO\)"):
        finishes(lambda: started.result(timeout=15))


def test_wav_header_layout_is_untouched_by_reading(tmp_path: Path) -> None:
    d = make_recording(tmp_path / "rec")
    head = (d / "user.wav").read_bytes()[:44]
    load_recording(d)
    assert (d / "user.wav").read_bytes()[:44] == head
    assert struct.unpack_from("<I", head, 40)[0] == 0


def test_repair_leaves_the_three_wavs_the_same_length(tmp_path: Path) -> None:
    """Each writer had flushed a different amount when the process died."""
    d = make_recording(tmp_path / "rec")
    for name, ch, frames in (("audio.wav", 2, 1700), ("user.wav", 1, 1800), ("agent.wav", 1, 1500)):
        pcm = b"\1\0" * ch * frames
        (d / name).write_bytes(wav_header(sample_rate=RATE, channels=ch, data_bytes=0) + pcm)
    out = io.StringIO()
    assert repair_main(d, out=out) == 0
    assert "agent.wav: padded with 300 frames of silence to 1800 frames" in out.getvalue()
    lengths = set()
    for name in ("audio.wav", "user.wav", "agent.wav"):
        with wave.open(str(d / name)) as w:
            lengths.add(w.getnframes())
    assert lengths == {1800}
    rec = load_recording(d)
    assert len(rec.audio) == len(rec.user_audio) == len(rec.agent_audio) == 1800
    assert (rec.agent_audio[1500:] == 0).all() and (rec.agent_audio[:1500] == 1).all()
    out = io.StringIO()
    assert repair_main(d, out=out) == 0 and "nothing to repair" in out.getvalue()
