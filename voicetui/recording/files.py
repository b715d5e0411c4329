"""Opening the files of a recording folder, which may come from anyone (``show``, ``replay``,
``recording repair``): only regular files, never through a symbolic link, with bounded reads.

A link (``user.wav`` → somebody's document), a FIFO (a read that never returns), a device
(``/dev/zero``: a read that never ends) or a file far larger than a recording's is refused with
:class:`NotARecordingFile`, a ``ValueError`` whose message names the file and says why. JSON
nested too deeply to parse is the same error, not a ``RecursionError``.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any, BinaryIO

MAX_JSON_BYTES = 16 * 1024 * 1024
"""``session.json``: a few kB in practice."""
MAX_TEXT_BYTES = 1024 * 1024 * 1024
"""``events.jsonl``, ``transcript.md``: hours of conversation are a few MB."""


class NotARecordingFile(ValueError):
    """The file is not something a recording holds; the message says which and why."""


def _kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISDIR(mode):
        return "a folder"
    return "not a regular file"


def open_file(path: str | os.PathLike[str], *, write: bool = False) -> BinaryIO:
    """``path`` opened for binary reading (or reading and writing) if it is a regular file
    and not a symbolic link; else NotARecordingFile. OSError (missing, no permission) as
    ``open`` raises it."""
    flags = (os.O_RDWR if write else os.O_RDONLY) | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
    try:
        fd = os.open(path, flags)
    except OSError as e:
        if Path(path).is_symlink():
            raise NotARecordingFile(
                f"{path}: not a recording file (a symbolic link; recordings hold only regular "
                "files)"
            ) from e
        raise
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise NotARecordingFile(f"{path}: not a recording file ({_kind(st.st_mode)})")
        os.set_blocking(fd, True)
        return os.fdopen(fd, "r+b" if write else "rb")
    except BaseException:
        os.close(fd)
        raise


def read_bytes(path: str | os.PathLike[str], limit: int = MAX_TEXT_BYTES) -> bytes:
    """The whole content of a regular file of at most ``limit`` bytes."""
    with open_file(path) as f:
        data = f.read(limit + 1)
    if len(data) > limit:
        raise NotARecordingFile(
            f"{path}: not a recording file (larger than {limit // (1024 * 1024)} MB)"
        )
    return data


def read_text(path: str | os.PathLike[str], limit: int = MAX_TEXT_BYTES) -> str:
    return read_bytes(path, limit).decode("utf-8", "replace")


def parse_json(data: str | bytes, *, where: str | os.PathLike[str]) -> Any:
    """``json.loads`` whose errors are all ValueError naming ``where`` (deep nesting too)."""
    try:
        return json.loads(data)
    except RecursionError:
        raise NotARecordingFile(f"{where}: JSON nested too deeply") from None
    except ValueError as e:
        raise ValueError(f"{where}: {e}") from None


def read_json(path: str | os.PathLike[str], limit: int = MAX_JSON_BYTES) -> Any:
    return parse_json(read_bytes(path, limit), where=path)
