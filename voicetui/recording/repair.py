"""Reading recordings whatever state their writer left them in, and repairing them.

A WAV header can undercount (the process died between writing audio and rewriting the header:
valid, the last flush is just not counted) or be wrong (a writer died mid-update, a file was
truncated): :func:`repair_wav` recomputes the sizes from the file size. A torn last line of
``events.jsonl`` (a write cut short by a full disk) is cut off.

Only regular files are opened, never through a symbolic link (:mod:`.files`): a crafted folder
cannot make repair write to a file elsewhere, nor make a read hang or never end.
"""

from __future__ import annotations

import os
import struct
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import numpy as np

from ..agents.audio import read_pcm16
from .files import NotARecordingFile, open_file, parse_json, read_bytes, read_json
from .wav_writer import HEADER_SIZE, MAX_DATA_BYTES, wav_header

WAV_CHANNELS = {"audio.wav": 2, "user.wav": 1, "agent.wav": 1}


@dataclass
class WavLayout:
    channels: int
    sample_rate: int
    bits: int
    data_offset: int
    header_data_bytes: int
    header_riff_bytes: int
    file_size: int

    @property
    def block(self) -> int:
        return self.channels * self.bits // 8

    @property
    def available_bytes(self) -> int:
        """Whole sample frames present after the header."""
        avail = max(0, self.file_size - self.data_offset)
        return min(avail - avail % self.block, MAX_DATA_BYTES)

    @property
    def consistent(self) -> bool:
        return (
            self.header_data_bytes == self.available_bytes
            and self.header_riff_bytes == self.data_offset - 8 + self.available_bytes
        )


def inspect_wav(path: str | os.PathLike[str]) -> WavLayout | None:
    """The layout of a PCM WAV file, or None if its header cannot be parsed."""
    with open_file(path) as f:
        size = os.fstat(f.fileno()).st_size
        head = f.read(4096)
    if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        return None
    riff = struct.unpack_from("<I", head, 4)[0]
    pos = 12
    fmt: tuple[int, int, int, int] | None = None
    while pos + 8 <= len(head):
        cid, csize = head[pos : pos + 4], struct.unpack_from("<I", head, pos + 4)[0]
        if cid == b"fmt " and pos + 8 + 16 <= len(head):
            tag, ch, rate, _, _, bits = struct.unpack_from("<HHIIHH", head, pos + 8)
            fmt = (tag, ch, rate, bits)
        elif cid == b"data":
            if fmt is None or fmt[0] != 1 or fmt[1] < 1 or fmt[3] != 16:
                return None
            return WavLayout(fmt[1], fmt[2], fmt[3], pos + 8, csize, riff, size)
        pos += 8 + csize + (csize & 1)
    return None


def read_wav(path: str | os.PathLike[str]) -> tuple[np.ndarray, int]:
    """A 16-bit PCM WAV as int16 samples shaped (frames, channels) and its rate, reading every
    whole frame present even if the header's sizes are wrong. Raises ValueError if the file
    is not a PCM WAV."""
    layout = inspect_wav(path)
    if layout is None:
        raise ValueError(f"{path}: not a 16-bit PCM WAV file")
    with open_file(path) as f:
        f.seek(layout.data_offset)
        pcm = read_pcm16(
            f,
            frames=layout.available_bytes // layout.block,
            channels=layout.channels,
            sample_rate=layout.sample_rate,
        )
    return pcm, layout.sample_rate


def repair_wav(
    path: str | os.PathLike[str], *, sample_rate: int | None = None, channels: int | None = None
) -> str | None:
    """Fix the header's sizes (and drop a partial last frame). A header that cannot be parsed
    at all is rewritten when ``sample_rate`` and ``channels`` are known (the recorder's
    44-byte layout). Returns what was done, or None if the file was fine."""
    layout = inspect_wav(path)
    if layout is None:
        if sample_rate is None or channels is None:
            raise ValueError(f"{path}: the header is unreadable and the format unknown")
        with open_file(path, write=True) as f:
            size = os.fstat(f.fileno()).st_size
            data = max(0, size - HEADER_SIZE)
            data -= data % (2 * channels)
            f.write(wav_header(sample_rate=sample_rate, channels=channels, data_bytes=data))
            f.truncate(HEADER_SIZE + data)
            f.flush()
            os.fsync(f.fileno())
        return f"rewrote the header ({data // (2 * channels)} frames)"
    end = layout.data_offset + layout.available_bytes
    if layout.consistent and layout.file_size == end:
        return None
    with open_file(path, write=True) as f:
        f.seek(4)
        f.write(struct.pack("<I", layout.data_offset - 8 + layout.available_bytes))
        f.seek(layout.data_offset - 4)
        f.write(struct.pack("<I", layout.available_bytes))
        if layout.file_size > end:
            f.truncate(end)
        f.flush()
        os.fsync(f.fileno())
    frames = layout.available_bytes // layout.block
    return (
        f"fixed the header: {layout.header_data_bytes // layout.block} → {frames} frames"
        if layout.header_data_bytes != layout.available_bytes
        else "fixed the header sizes"
    )


def repair_jsonl(path: str | os.PathLike[str]) -> str | None:
    """Cut a torn last line (no newline, not valid JSON)."""
    data = read_bytes(path)
    if not data or data.endswith(b"\n"):
        return None
    cut = data.rfind(b"\n") + 1
    tail = data[cut:]
    try:
        parse_json(tail, where=path)
    except ValueError:
        with open_file(path, write=True) as f:
            f.truncate(cut)
        return f"removed a torn last line ({len(tail)} bytes)"
    with open_file(path, write=True) as f:  # a complete line that only lacks its newline
        f.seek(0, os.SEEK_END)
        f.write(b"\n")
    return "added the missing newline"


def align_wavs(d: Path) -> list[str]:
    """Pad the shorter WAVs of a recording with silence to the longest one's length: each
    writer had flushed a different amount when the process died, yet the three tracks start
    together and must end together (``audio.wav``'s channels are ``user.wav`` and
    ``agent.wav``). Returns what was done."""
    frames: dict[str, tuple[int, WavLayout]] = {}
    for name in WAV_CHANNELS:
        p = d / name
        layout = inspect_wav(p) if os.path.lexists(p) else None
        if layout is not None and layout.consistent:
            frames[name] = (layout.available_bytes // layout.block, layout)
    if len(frames) < 2:
        return []
    target = max(n for n, _ in frames.values())
    done = []
    for name, (n, layout) in frames.items():
        if n == target:
            continue
        data = (target - n) * layout.block
        with open_file(d / name, write=True) as f:
            f.seek(layout.data_offset + layout.available_bytes)
            f.truncate()
            f.write(bytes(data))
            f.seek(4)
            f.write(struct.pack("<I", layout.data_offset - 8 + layout.available_bytes + data))
            f.seek(layout.data_offset - 4)
            f.write(struct.pack("<I", layout.available_bytes + data))
            f.flush()
            os.fsync(f.fileno())
        done.append(f"{name}: padded with {target - n} frames of silence to {target} frames")
    return done


def _refuse_odd_files(d: Path) -> None:
    """Before changing anything: every file repair would touch must be a regular file."""
    for name in (*WAV_CHANNELS, "events.jsonl", "session.json"):
        p = d / name
        if os.path.lexists(p) and (p.is_symlink() or not p.is_file()):
            with open_file(p):  # raises NotARecordingFile with the reason
                raise NotARecordingFile(f"{p}: not a recording file")  # (replaced meanwhile)


def repair(directory: str | os.PathLike[str]) -> list[str]:
    """Repair every file of a recording in place; returns what was done (empty: all fine).
    Raises FileNotFoundError if ``directory`` is not a folder, NotARecordingFile (changing
    nothing) if one of its files is a link, a FIFO, a device..."""
    d = Path(directory)
    if not d.is_dir():
        raise FileNotFoundError(f"{d}: not a folder")
    _refuse_odd_files(d)
    rate: int | None = None
    try:
        info = read_json(d / "session.json")
        rate = int(info["sample_rate"])
    except (OSError, ValueError, KeyError, TypeError):
        pass
    done: list[str] = []
    for name, channels in WAV_CHANNELS.items():
        p = d / name
        if os.path.lexists(p):
            what = repair_wav(p, sample_rate=rate, channels=channels)
            if what:
                done.append(f"{name}: {what}")
    done += align_wavs(d)
    p = d / "events.jsonl"
    if os.path.lexists(p):
        what = repair_jsonl(p)
        if what:
            done.append(f"events.jsonl: {what}")
    tmp = d / ".session.json.tmp"  # killed while rewriting session.json (the old one is intact)
    if tmp.exists():
        tmp.unlink()
        done.append("removed an unfinished .session.json.tmp")
    return done


def repair_main(directory: str | os.PathLike[str], *, out: TextIO | None = None) -> int:
    """``voicetui recording repair DIR``: 0 when the recording is (now) readable, 1 if not."""
    out = out or sys.stdout
    try:
        done = repair(directory)
    except (OSError, ValueError) as e:
        print(f"cannot repair {directory}: {e}", file=out)
        return 1
    if not done:
        print(f"{directory}: nothing to repair", file=out)
    for line in done:
        print(f"{directory}: {line}", file=out)
    return 0
